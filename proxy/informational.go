package proxy

import "net/http"

// noInformational is the ResponseWriter the ReverseProxy gets for a tenant's request: it drops
// the 1xx responses (103 Early Hints) the upstream sends before its answer. The ReverseProxy
// relays each one by copying its headers into Header(), writing the status and clearing
// Header() again; a tenant must see none of them, since their values are the exporter's,
// unfiltered (a Link to another namespace's resources, say). Header() is a map of its own until
// the final status: the 1xx headers land there and are cleared, and the headers set before the
// ReverseProxy ran stay on the underlying writer. The tenant's answer itself is written by the
// filter to the underlying writer, never through this one.
type noInformational struct {
	http.ResponseWriter
	header  http.Header
	written bool
}

func newNoInformational(w http.ResponseWriter) *noInformational {
	return &noInformational{ResponseWriter: w, header: http.Header{}}
}

func (w *noInformational) Header() http.Header {
	if w.written {
		return w.ResponseWriter.Header()
	}
	return w.header
}

func (w *noInformational) WriteHeader(code int) {
	if w.written {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	w.commit()
	w.ResponseWriter.WriteHeader(code)
}

func (w *noInformational) Write(b []byte) (int, error) {
	if !w.written {
		w.commit()
	}
	return w.ResponseWriter.Write(b)
}

// commit moves the headers set through this writer (an error answer's) to the underlying one.
func (w *noInformational) commit() {
	w.written = true
	dst := w.ResponseWriter.Header()
	for k, v := range w.header {
		dst[k] = v
	}
}

// Unwrap lets http.ResponseController (flushes, deadlines) reach the underlying writer.
func (w *noInformational) Unwrap() http.ResponseWriter { return w.ResponseWriter }
