package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/auth"
)

// Projections, KurrentDB's standard ones and the users' JavaScript ones, as
// KurrentDB's rules have them: any user may see their statistics, state
// and result; enabling, disabling, aborting and resetting one take an
// administrator or an operator.

var errProjectionsOff = errors.New("this server runs no projections: its store cannot keep them")

type projectionsData struct {
	Projections []projections.Statistics
}

func (u *UI) projectionsPage(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Projections
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errProjectionsOff)
		return
	}
	u.render(w, r, http.StatusOK, "projections", p, "Projections", projectionsData{Projections: m.List(r.Context())})
}

type projectionData struct {
	Stats     projections.Statistics
	Partition string
	State     shown
	Result    shown
	MayManage bool
	// Done is the action that led to this page, "" when none.
	Done string
}

func projectionURL(name string) string {
	return Path + "projection?" + url.Values{"name": {name}}.Encode()
}

func (u *UI) projection(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Projections
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errProjectionsOff)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	name, partition := q.Get("name"), q.Get("partition")
	st, err := m.Statistics(ctx, name)
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	d := projectionData{Stats: st, Partition: partition, MayManage: isOperator(p), Done: q.Get("done")}
	state, err := m.State(ctx, name, partition)
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	result, err := m.Result(ctx, name, partition)
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	d.State, d.Result = show(state), show(result)
	u.render(w, r, http.StatusOK, "projection", p, name, d)
}

// projectionAction enables, disables, aborts or resets the projection the
// form names.
func (u *UI) projectionAction(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Projections
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errProjectionsOff)
		return
	}
	action := r.PathValue("action")
	var do func(ctx context.Context, name string) error
	switch action {
	case "enable":
		do = m.Enable
	case "disable":
		do = m.Disable
	case "abort":
		do = m.Abort
	case "reset":
		do = m.Reset
	default:
		u.fail(w, r, p, http.StatusNotFound, fmt.Errorf("no projection action %q: enable, disable, abort or reset", action))
		return
	}
	if err := requireOperator(p, action+" a projection"); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, p, 0, badInput("form: %v", err))
		return
	}
	name := r.PostForm.Get("name")
	if err := do(r.Context(), name); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	u.log.Info("web UI: projection changed", "projection", name, "action", action, "user", p.Name)
	http.Redirect(w, r, projectionURL(name)+"&done="+action, http.StatusSeeOther)
}
