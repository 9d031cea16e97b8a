package middleware

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an RFC 9457 problem details object. Its type names the error
// in the package documentation, so that a sender's operator who follows it
// reads what the error means; about:blank stands for "nothing beyond the
// status code".
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

const (
	rootDocs = "https://pkg.go.dev/github.com/revguard/revguard"
	selfDocs = rootDocs + "/middleware"
)

// Problem types: the documentation of the error each response stands for.
const (
	typeInvalidKey      = rootDocs + "#ErrInvalidKey"
	typeInvalidRevision = rootDocs + "#ErrInvalidRevision"
	typeInvalidEvent    = rootDocs + "#ErrInvalidEvent"
	typeInFlight        = rootDocs + "#ErrInFlight"
	typeGap             = rootDocs + "#ErrGap"
	typeLeaseLost       = rootDocs + "#ErrLeaseLost"
	typeBodyTooLarge    = selfDocs + "#ErrBodyTooLarge"
	typeBlank           = "about:blank"
	typeMismatch        = selfDocs + "#WithReplay"
)

// WriteProblem answers with an RFC 9457 problem details object
// (application/problem+json), as the middleware answers its own errors:
// typ is a URI naming the error ("about:blank" for none beyond the status),
// title its short summary, detail what went wrong with this request. For
// handlers and verifiers of your own that should answer like the
// middleware.
func WriteProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	writeProblem(w, status, typ, title, detail)
}

func writeProblem(w http.ResponseWriter, status int, typ, title, detail string) {
	// Marshalling a struct of strings and an int cannot fail.
	b, _ := json.Marshal(problem{Type: typ, Title: title, Status: status, Detail: detail})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
