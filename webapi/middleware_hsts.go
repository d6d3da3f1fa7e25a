package webapi

import "net/http"

const hstsValue = "max-age=31536000; includeSubDomains"

// hsts tells browsers to use HTTPS only, on responses served over TLS or,
// with secureCookies, from behind a proxy that terminates it. Never over
// plain HTTP otherwise: there it is ignored at best and, on a development
// host, pins the name to HTTPS for a year.
func hsts(secureCookies bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secureCookies || r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}
