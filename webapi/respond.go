package webapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
)

// apiError is the body of every error response. Messages never repeat the
// caller's input, which may be anything someone typed.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

// maxBodyBytes bounds every request body.
const maxBodyBytes = 1 << 20

// errBadBody is returned by decodeBody; its message is safe to show.
type errBadBody struct {
	status int
	code   string
	msg    string
}

func (e *errBadBody) Error() string { return e.msg }

// decodeBody reads a JSON body of at most maxBodyBytes into v, refusing
// other content types and unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &errBadBody{http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &errBadBody{http.StatusBadRequest, "body_too_large", fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes)}
		}
		return &errBadBody{http.StatusBadRequest, "invalid_json", "the request body is not valid JSON of the expected shape"}
	}
	if dec.More() {
		return &errBadBody{http.StatusBadRequest, "invalid_json", "the request body holds more than one JSON value"}
	}
	return nil
}

func writeBodyError(w http.ResponseWriter, err error) {
	var be *errBadBody
	if errors.As(err, &be) {
		writeError(w, be.status, be.code, be.msg)
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_json", "the request body could not be read")
}
