// Package webapi is erasure's web API and browser UI: contact search, the
// contact record with its artefacts per channel, the delete flow with live
// per-channel progress over a websocket, and the audit log.
//
// # Endpoints
//
// Roles grant permissions: agent (contacts.read), dpo (contacts.read,
// contacts.delete, audit.read_own), auditor (audit.read), legal
// (contacts.read, contacts.hold), admin (contacts.read, contacts.delete,
// audit.read, contacts.hold). audit.read_own is the audit log restricted
// to the entries of the caller's own requests, so whoever deletes can
// verify it there.
//
//	GET  /healthz                      anyone
//	GET  /, /static/...                anyone (the embedded UI)
//	GET  /api/v1/config                anyone (what the sign-in page needs)
//	POST /api/v1/login                 anyone; sets the session cookie, returns the CSRF token
//	POST /api/v1/logout                a session
//	POST /api/v1/sessions/logout-all   a session; ends every session of its user
//	GET  /api/v1/me                    signed in
//	GET  /api/v1/oidc/login, callback  anyone, when single sign-on is configured
//	GET  /api/v1/contacts              contacts.read
//	GET  /api/v1/contacts/{id}         contacts.read
//	POST /api/v1/deletions             contacts.delete; reason_code (a configured one), ticket;
//	                                   409 legal_hold when every contact is held, 409
//	                                   deletion_in_progress when one is being deleted
//	POST /api/v1/subjects/contacts     contacts.read; {"phone"} or {"email"}: one person's contacts,
//	                                   exact matches only, up to 1,000
//	POST /api/v1/contacts/inventory    contacts.read; up to 1,000 contacts read afresh: counts per
//	                                   channel, hold, the deletion that removed or is removing each
//	POST /api/v1/contacts/{id}/hold, /hold/lift  contacts.hold; reason_code, ticket: places or
//	                                   lifts a legal hold (applied and audited by the aggregator)
//	GET  /api/v1/deletions/{id}        its requester, contacts.delete or audit.read
//	GET  /api/v1/audit, /audit.csv     audit.read, or audit.read_own for one's own entries;
//	                                   user is a principal's start in any case; total counts all pages
//	GET  /api/v1/audit/{request_id}/receipt  audit.read, or audit.read_own for one's own request;
//	                                   the signed receipt, as a file
//	GET  /api/v1/suggestions           field=agent|queue (contacts.read) or user (audit.read;
//	                                   audit.read_own: oneself): up to 10 existing values by prefix
//	GET  /api/v1/receipts/public-key   anyone; the PEM key receipts verify with
//	GET  /api/v1/ws                    contacts.delete
//
// Errors are JSON {"error": "...", "code": "..."}; messages never repeat the
// caller's input. Browsers authenticate with the session cookie and send
// the X-CSRF-Token header on every state-changing call; scripts send
// "Authorization: Bearer <token>" and need no CSRF token. Deletions from a
// session are requested with source "ui", from a token with source "cli".
//
// # Sessions
//
// Sign-in sessions live in memory only: they do not survive a restart, and
// with several webapi instances behind a load balancer the balancer must
// keep a browser on one instance (sticky sessions) or users sign in again.
// Login throttling is in memory too, per user name and client address
// (the TCP peer: behind a proxy, the proxy's address).
//
// # Websocket
//
// The websocket carries {"type":"progress"} for each channel result and
// {"type":"outcome"} for the final outcome, only to the session (or token)
// that submitted the request. After a reconnect the browser sends
// {"type":"watch","request_ids":[...]} and receives {"type":"state"} for
// each request its user submitted; requests of anyone else are ignored
// without a reply. Each message carries the request's content digest
// (request_digest; POST /api/v1/deletions returns it too): a submission that
// reused the request ID with other content has another digest, and its
// outcome (status refused) is not the submitter's. For a cookie session the
// handshake's Origin must name
// the Host the browser connected to, so a reverse proxy must pass Host
// through unchanged.
//
// A page sends {"type":"watch_contacts","contact_ids":[...]} for the contacts
// it shows, and receives {"type":"contact","contact_id","request_id","status"}
// when a deletion of one is decided, whoever asked, or {…, "hold"} when its
// legal hold changes on this instance.
package webapi
