{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "doorman.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or the release name if it already contains the chart name. */}}
{{- define "doorman.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-<component>, within 63 characters. Call with (list $ "edge"). */}}
{{- define "doorman.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "doorman.fullname" $root | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" }}
{{- end }}

{{- define "doorman.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. Call with (list $ "component"). */}}
{{- define "doorman.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "doorman.chart" $root }}
{{ include "doorman.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: doorman
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels. Call with (list $ "component"). */}}
{{- define "doorman.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "doorman.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* image reference. Call with (list $ .Values.edge.image). */}}
{{- define "doorman.image" -}}
{{- $root := index . 0 }}
{{- $img := index . 1 }}
{{- $tag := $img.tag | default $root.Chart.AppVersion }}
{{- if $root.Values.image.registry }}
{{- printf "%s/%s:%s" $root.Values.image.registry $img.repository $tag }}
{{- else }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{- define "doorman.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "doorman.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Pod spec fields shared by Doorman's pods. */}}
{{- define "doorman.podCommon" -}}
serviceAccountName: {{ include "doorman.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Topology spread over zones and nodes. Call with (list $ "component"). */}}
{{- define "doorman.topologySpread" -}}
topologySpreadConstraints:
{{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "doorman.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}

{{/* Redis address and password Secret (bundled or external). */}}
{{- define "doorman.redisHost" -}}
{{- if .Values.redis.enabled }}
{{- include "doorman.componentName" (list . "redis") }}
{{- else }}
{{- required "redis.external.host is required when redis.enabled is false" .Values.redis.external.host }}
{{- end }}
{{- end }}

{{- define "doorman.redisPort" -}}
{{- if .Values.redis.enabled }}6379{{ else }}{{ .Values.redis.external.port }}{{ end }}
{{- end }}

{{- define "doorman.redisSecretName" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.enabled }}
{{- default (include "doorman.componentName" (list . "redis")) .Values.redis.auth.existingSecret }}
{{- end }}
{{- else }}
{{- .Values.redis.external.existingSecret }}
{{- end }}
{{- end }}

{{- define "doorman.redisSecretKey" -}}
{{- if .Values.redis.enabled }}{{ .Values.redis.auth.existingSecretKey }}{{ else }}{{ .Values.redis.external.existingSecretKey }}{{ end }}
{{- end }}

{{/* Redis Sentinel: "host:port,..." of the sentinels the directory asks ("" = a single Redis host). */}}
{{- define "doorman.redisSentinels" -}}
{{- if .Values.redis.enabled }}
{{- if eq .Values.redis.architecture "sentinel" }}
{{- $name := include "doorman.componentName" (list . "redis") }}
{{- $hosts := list }}
{{- range $i := until (int .Values.redis.sentinel.replicas) }}
{{- $hosts = append $hosts (printf "%s-%d.%s-headless.%s.svc.cluster.local:26379" $name $i $name $.Release.Namespace) }}
{{- end }}
{{- join "," $hosts }}
{{- end }}
{{- else }}
{{- join "," .Values.redis.external.sentinels }}
{{- end }}
{{- end }}

{{/* The distinct ports of redis.external.sentinels, as a JSON list (for the NetworkPolicy). */}}
{{- define "doorman.redisSentinelPorts" -}}
{{- $ports := list }}
{{- range .Values.redis.external.sentinels }}
{{- $p := int (last (splitList ":" .)) }}
{{- if and (ne $p (int $.Values.redis.external.port)) (not (has $p $ports)) }}{{ $ports = append $ports $p }}{{ end }}
{{- end }}
{{- toJson $ports }}
{{- end }}

{{- define "doorman.redisMasterName" -}}
{{- if .Values.redis.enabled }}{{ .Values.redis.sentinel.masterName }}{{ else }}{{ .Values.redis.external.masterName }}{{ end }}
{{- end }}

{{/* The sentinels' password Secret: the bundled sentinels share Redis's password; external ones have their own. */}}
{{- define "doorman.redisSentinelSecretName" -}}
{{- if .Values.redis.enabled }}{{ include "doorman.redisSecretName" . }}{{ else }}{{ .Values.redis.external.sentinelExistingSecret }}{{ end }}
{{- end }}

{{- define "doorman.redisSentinelSecretKey" -}}
{{- if .Values.redis.enabled }}{{ .Values.redis.auth.existingSecretKey }}{{ else }}{{ .Values.redis.external.sentinelExistingSecretKey }}{{ end }}
{{- end }}

{{/* The directory's gRPC target for the edges: every pod of the headless Service, balanced round_robin. */}}
{{- define "doorman.directoryTarget" -}}
{{- printf "dns:///%s:%d" (include "doorman.directoryHost" .) (int .Values.directory.service.port) }}
{{- end }}

{{/* The directory Service's DNS name: what the edges dial, and the name its TLS certificate must carry. */}}
{{- define "doorman.directoryHost" -}}
{{- printf "%s.%s.svc.%s" (include "doorman.componentName" (list . "directory")) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* NetworkPolicy egress rules: cluster DNS, and the back-end MTAs. */}}
{{- define "doorman.np.dns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dnsNamespace }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
{{- define "doorman.np.backends" -}}
- {{- with .Values.networkPolicy.backends }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .Values.networkPolicy.backendPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}

{{/* A config value as the services parse it: whole numbers never in exponent notation. */}}
{{- define "doorman.configValue" -}}
{{- if kindIs "float64" . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}

{{/* The Secret holding the directory's admin API bearer token. */}}
{{- define "doorman.adminTokenSecretName" -}}
{{- default (include "doorman.componentName" (list . "admin-token")) .Values.directory.adminToken.existingSecret }}
{{- end }}
