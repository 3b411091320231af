// rcpt_list: the Haraka peer's recipient list for bench/run.sh. Loads
// config/rcpt_list (one address per line) into a Set at start-up and vouches
// for listed recipients (OK); any other recipient gets 550 5.1.1, like
// Postfix's relay_recipient_maps and Doorman's list mode. An in-memory Set is
// the cheapest lookup Haraka can do, so this favours the peer.
'use strict'

exports.register = function () {
  const lines = this.config.get('rcpt_list', 'list')
  this.valid = new Set(lines.map((l) => l.trim().toLowerCase()).filter((l) => l))
  this.loginfo(`rcpt_list: ${this.valid.size} addresses`)
}

exports.hook_rcpt = function (next, connection, params) {
  const rcpt = params[0]
  // address() in Haraka <= 3.2 (address-rfc2821), a property in 3.3 (@haraka/email-address).
  const addr = String(typeof rcpt.address === 'function' ? rcpt.address() : rcpt.address).toLowerCase()
  if (this.valid.has(addr)) return next(OK)
  next(DENY, `5.1.1 <${addr}>: Recipient address rejected: User unknown`)
}
