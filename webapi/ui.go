package webapi

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed ui
var uiFS embed.FS

func uiRoot() fs.FS {
	sub, err := fs.Sub(uiFS, "ui")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// staticHandler serves the embedded CSS and JavaScript under /static/.
// no-cache makes browsers revalidate, so an upgrade is never half-applied.
func staticHandler() http.Handler {
	fsrv := http.StripPrefix("/static/", http.FileServerFS(uiRoot()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			writeError(w, http.StatusNotFound, "not_found", "not found") // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

// serveIndex serves the single page of the UI.
func serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, uiRoot(), "index.html")
}
