package webui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/subscription"
)

//go:embed templates
var templateFiles embed.FS

// pages holds one template set per page: the layout and the page's
// "content".
var pages = parsePages()

var funcs = template.FuncMap{
	"bytes": formatBytes,
	"time":  formatTime,
	"ago":   formatAgo,
	"rate":  func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"int64": func(i int) int64 { return int64(i) },
	"list":  func(s ...string) []string { return s },
}

func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t := template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, n))
		out[name] = t
	}
	return out
}

// pageData is what every page's template receives.
type pageData struct {
	Title    string
	Page     string // the template, which the navigation marks
	User     string
	Operator bool
	Version  string
	Data     any
}

// render writes the page name with data, for the user p ("" when no one
// is logged in).
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p auth.Principal, title string, data any) {
	t, ok := pages[name]
	if !ok {
		panic("webui: no template " + name)
	}
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "layout.html", pageData{
		Title:    title,
		Page:     name,
		User:     p.Name,
		Operator: isOperator(p),
		Version:  buildinfo.Version(),
		Data:     data,
	})
	if err != nil {
		u.log.Error("web UI: rendering a page", "page", name, "err", err)
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the browser went away: nobody to tell
}

// failure is what the error page shows.
type failure struct {
	Status  int
	Heading string
	Message string
}

// fail renders the error page for err, with status or, when status is 0,
// the status err calls for.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, p auth.Principal, status int, err error) {
	if status == 0 {
		status = statusOf(err)
	}
	if status >= 500 {
		u.log.Warn("web UI: request failed", "path", r.URL.Path, "user", p.Name, "err", err)
	}
	u.render(w, r, status, "error", p, http.StatusText(status), failure{Status: status, Heading: http.StatusText(status), Message: err.Error()})
}

// statusOf maps an error to the HTTP status that says what went wrong.
func statusOf(err error) int {
	switch {
	case errors.Is(err, acl.ErrAccessDenied), errors.Is(err, errNotOperator):
		return http.StatusForbidden
	case errors.Is(err, cairn.ErrStreamNotFound), errors.Is(err, subscription.ErrGroupNotFound),
		errors.Is(err, projections.ErrNotFound), errors.Is(err, errNoEvent):
		return http.StatusNotFound
	case errors.Is(err, cairn.ErrInvalidArgument), errors.Is(err, errBadInput):
		return http.StatusBadRequest
	case errors.Is(err, cairn.ErrStreamDeleted), errors.Is(err, projections.ErrBuiltin), errors.Is(err, projections.ErrRunning):
		return http.StatusConflict
	case errors.Is(err, cairn.ErrNotSupported):
		return http.StatusNotImplemented
	case errors.Is(err, context.Canceled):
		return http.StatusRequestTimeout
	}
	return http.StatusServiceUnavailable
}

var (
	// errNotOperator refuses management to users who are neither
	// administrators nor operators.
	errNotOperator = errors.New("it takes an administrator or an operator")
	// errBadInput is a request's parameter that cannot be used.
	errBadInput = errors.New("bad request")
	// errNoEvent is an event number that no event has.
	errNoEvent = errors.New("no such event")
)

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadInput, fmt.Sprintf(format, args...))
}

// requireOperator returns nil when p may manage the server.
func requireOperator(p auth.Principal, what string) error {
	if isOperator(p) {
		return nil
	}
	return fmt.Errorf("%w: user %q may not %s: %w", acl.ErrAccessDenied, p.Name, what, errNotOperator)
}

// allowRead returns nil when p may read stream ($all for the log).
func (u *UI) allowRead(ctx context.Context, p auth.Principal, stream string) error {
	if u.host.Access == nil {
		return nil
	}
	return u.host.Access.CheckUser(ctx, p, acl.Read, stream)
}

// writeJSON answers a script.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// jsonError answers a script's request that failed.
func jsonError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
}

func formatBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

func formatAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// maxShown bounds the bytes of data or metadata an event page shows.
const maxShown = 1 << 20

// shown is an event's data or metadata as a page shows it.
type shown struct {
	Text      string // pretty JSON, text, or a hex dump
	Kind      string // "json", "text", "binary" or "empty"
	Bytes     int
	Truncated bool
}

// show formats b for reading: JSON indented, UTF-8 text as it is, other
// bytes as a hex dump; at most maxShown bytes of it.
func show(b []byte) shown {
	s := shown{Bytes: len(b)}
	if len(b) == 0 {
		s.Kind = "empty"
		return s
	}
	if len(b) <= maxShown && json.Valid(b) {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			s.Kind, s.Text = "json", buf.String()
			return s
		}
	}
	if len(b) > maxShown {
		b, s.Truncated = b[:maxShown], true
	}
	if utf8.Valid(b) {
		s.Kind, s.Text = "text", string(b)
		return s
	}
	s.Kind, s.Text = "binary", hexDump(b)
	return s
}

// hexDump writes b as lines of 16 bytes: offset, hex, printable ASCII.
func hexDump(b []byte) string {
	var sb strings.Builder
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		fmt.Fprintf(&sb, "%08x  ", off)
		for i := range 16 {
			if i < len(line) {
				fmt.Fprintf(&sb, "%02x ", line[i])
			} else {
				sb.WriteString("   ")
			}
			if i == 7 {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(" |")
		for _, c := range line {
			if c < 32 || c > 126 {
				c = '.'
			}
			sb.WriteByte(c)
		}
		sb.WriteString("|\n")
	}
	return sb.String()
}

// preview is a one-line glimpse of an event's data, for lists.
func preview(b []byte, max int) string {
	if len(b) == 0 {
		return ""
	}
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes, binary)", len(b))
	}
	s := strings.Join(strings.Fields(string(b[:min(len(b), max*4)])), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return s
}
