// DOM helpers. Text always goes in as text nodes (textContent): nothing a
// user or a back-end supplied is ever parsed as HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

let nextId = 0;
// A labelled form field: [label, input].
export function field(labelText, input) {
  if (!input.id) input.id = 'f' + (++nextId);
  return el('div', {}, el('label', { for: input.id }, labelText), input);
}

export function checkbox(labelText, checked) {
  const input = el('input', { type: 'checkbox', id: 'f' + (++nextId) });
  input.checked = !!checked;
  return [el('label', { class: 'inline', for: input.id }, input, labelText), input];
}

export function setStatus(text, isError = false) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = isError ? 'error' : '';
}

// A modal confirmation (keyboard: Tab between buttons, Esc cancels).
export function confirmDialog(text, okLabel = 'Confirm') {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = 'cancel';
    d.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
