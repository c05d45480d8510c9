package webui

import (
	"errors"
	"net/http"

	"github.com/cairndb/cairn/server/auth"
)

// Scavenges: the engine's compaction, run by the server one at a time. Any
// user may see the running or last one; starting and stopping one take an
// administrator or an operator, as KurrentDB's Operations service has it.
// Compaction reports no progress of its own: the page shows how long it has
// run and the store's size on disk, then and now.

var errScavengeOff = errors.New("this server offers no scavenge")

// scavengeState is a scavenge as the page and its script show it.
type scavengeState struct {
	Known     bool   `json:"known"` // false: none ran since the server started
	ID        string `json:"id"`
	Running   bool   `json:"running"`
	Outcome   string `json:"outcome"` // running, finished, stopped or failed
	Error     string `json:"error,omitempty"`
	Started   string `json:"started"`
	Ended     string `json:"ended"`
	Elapsed   string `json:"elapsed"`
	Before    string `json:"before"`
	After     string `json:"after"`
	Now       string `json:"now"` // the store's size on disk now
	MayManage bool   `json:"mayManage"`
}

func (u *UI) scavengeState(r *http.Request, p auth.Principal) scavengeState {
	st := scavengeState{MayManage: isOperator(p), Now: "unknown"}
	if n, err := u.host.Store.DiskBytes(r.Context()); err == nil {
		st.Now = formatBytes(n)
	}
	sc, ok := u.host.Scavenges.LastScavenge()
	if !ok {
		return st
	}
	st.Known, st.ID, st.Running = true, sc.ID, sc.Running
	st.Started, st.Ended = formatTime(sc.Started), formatTime(sc.Ended)
	st.Before, st.After = formatBytes(sc.BytesBefore), formatBytes(sc.BytesAfter)
	end := sc.Ended
	if sc.Running {
		end = u.opts.Now()
	}
	st.Elapsed = formatAgo(end.Sub(sc.Started))
	switch {
	case sc.Running:
		st.Outcome = "running"
	case sc.Err != nil:
		st.Outcome, st.Error = "failed", sc.Err.Error()
	case sc.Stopped:
		st.Outcome = "stopped"
	default:
		st.Outcome = "finished"
	}
	return st
}

func (u *UI) scavengePage(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if u.host.Scavenges == nil {
		u.fail(w, r, p, http.StatusNotFound, errScavengeOff)
		return
	}
	u.render(w, r, http.StatusOK, "scavenge", p, "Scavenge", u.scavengeState(r, p))
}

func (u *UI) scavengeJSON(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if u.host.Scavenges == nil {
		jsonError(w, errScavengeOff)
		return
	}
	writeJSON(w, http.StatusOK, u.scavengeState(r, p))
}

func (u *UI) startScavenge(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if u.host.Scavenges == nil {
		u.fail(w, r, p, http.StatusNotFound, errScavengeOff)
		return
	}
	if err := requireOperator(p, "start a scavenge"); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	sc, started := u.host.Scavenges.StartScavenge()
	if started {
		u.log.Info("web UI: scavenge started", "id", sc.ID, "user", p.Name)
	}
	http.Redirect(w, r, Path+"scavenge", http.StatusSeeOther)
}

func (u *UI) stopScavenge(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if u.host.Scavenges == nil {
		u.fail(w, r, p, http.StatusNotFound, errScavengeOff)
		return
	}
	if err := requireOperator(p, "stop a scavenge"); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, p, 0, badInput("form: %v", err))
		return
	}
	id := r.PostForm.Get("id")
	if err := u.host.Scavenges.StopScavenge(id); err != nil {
		u.fail(w, r, p, http.StatusNotFound, err)
		return
	}
	u.log.Info("web UI: scavenge stopped", "id", id, "user", p.Name)
	http.Redirect(w, r, Path+"scavenge", http.StatusSeeOther)
}
