package webui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/subscription"
)

// Persistent subscriptions, as KurrentDB's rules have them: any user may
// see the groups and their statistics; the parked events and their replay
// take an administrator or an operator.

// parkedShown bounds the parked events a group's page lists.
const parkedShown = 100

var errSubscriptionsOff = errors.New("this server runs no persistent subscriptions: its store cannot keep them")

type subscriptionsData struct {
	Groups []subscription.Info
}

func (u *UI) subscriptions(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Subscriptions
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errSubscriptionsOff)
		return
	}
	groups, err := m.List(r.Context(), "")
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	u.render(w, r, http.StatusOK, "subscriptions", p, "Persistent subscriptions", subscriptionsData{Groups: groups})
}

type subscriptionData struct {
	Info        subscription.Info
	MayManage   bool
	Parked      []subscription.ParkedEvent
	ParkedTotal int
	// Replayed is how many parked events the last replay delivered
	// again, -1 when the page does not follow a replay.
	Replayed int
}

func groupURL(stream, group string) string {
	return Path + "subscription?" + url.Values{"stream": {stream}, "group": {group}}.Encode()
}

func (u *UI) subscription(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Subscriptions
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errSubscriptionsOff)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	stream, group := q.Get("stream"), q.Get("group")
	info, err := m.Info(ctx, stream, group)
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	d := subscriptionData{Info: info, MayManage: isOperator(p), Replayed: -1}
	if s := q.Get("replayed"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			d.Replayed = n
		}
	}
	if d.MayManage {
		if d.Parked, d.ParkedTotal, err = m.Parked(ctx, stream, group, parkedShown); err != nil {
			u.fail(w, r, p, 0, err)
			return
		}
	}
	u.render(w, r, http.StatusOK, "subscription", p, group+" on "+stream, d)
}

// replayParked delivers a group's parked events again: ?max= of them, all
// when it is absent or 0.
func (u *UI) replayParked(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	m := u.host.Subscriptions
	if m == nil {
		u.fail(w, r, p, http.StatusNotFound, errSubscriptionsOff)
		return
	}
	if err := requireOperator(p, "replay parked events"); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		u.fail(w, r, p, 0, badInput("form: %v", err))
		return
	}
	stream, group := r.PostForm.Get("stream"), r.PostForm.Get("group")
	max := 0
	if s := r.PostForm.Get("max"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			u.fail(w, r, p, 0, badInput("max %q: want a number from 0 (0 replays every parked event)", s))
			return
		}
		max = n
	}
	n, err := m.ReplayParked(r.Context(), stream, group, max)
	if err != nil {
		u.fail(w, r, p, 0, fmt.Errorf("replaying the parked events of %s on %s: %w", group, stream, err))
		return
	}
	u.log.Info("web UI: parked events replayed", "stream", stream, "group", group, "events", n, "user", p.Name)
	http.Redirect(w, r, groupURL(stream, group)+"&replayed="+strconv.Itoa(n), http.StatusSeeOther)
}
