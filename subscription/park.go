package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
)

// parkedEntry is an event in a group's parked list.
type parkedEntry struct {
	ID       uuid.UUID `json:"id"`
	Position uint64    `json:"position"`
	Stream   string    `json:"stream"`
	Version  int64     `json:"version"`
	Reason   string    `json:"reason,omitempty"`
	Parked   time.Time `json:"parked"`
}

type parkedList struct {
	Events []parkedEntry `json:"events"`
}

// park records items in the parked list and then marks them processed. On
// failure they go back to the retry queue.
func (g *group) park(ctx context.Context, items []*item, reason string) error {
	if len(items) == 0 {
		return nil
	}
	g.parkMu.Lock()
	defer g.parkMu.Unlock()
	g.mu.Lock()
	list := slices.Clone(g.parked)
	now := time.Now().UTC()
	for _, it := range items {
		e := parkedEntry{ID: it.ev.ID, Position: it.ev.Position, Stream: it.ev.StreamID, Version: it.ev.Version, Reason: reason, Parked: now}
		if i := slices.IndexFunc(list, func(p parkedEntry) bool { return p.ID == e.ID }); i >= 0 {
			list[i] = e
		} else {
			list = append(list, e)
		}
	}
	g.mu.Unlock()
	err := g.writeParkedLocked(ctx, list)
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.changedLocked()
	if err != nil {
		g.retry = append(g.retry, items...)
		return err
	}
	g.parked = list
	for _, it := range items {
		g.stats.parked++
		if it.replay {
			delete(g.replays, it.ev.ID)
		} else {
			g.doneLocked(it.n)
		}
	}
	return nil
}

// unpark removes replayed events from the parked list once processed.
func (g *group) unpark(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	g.parkMu.Lock()
	defer g.parkMu.Unlock()
	g.mu.Lock()
	list := slices.DeleteFunc(slices.Clone(g.parked), func(p parkedEntry) bool { return slices.Contains(ids, p.ID) })
	g.mu.Unlock()
	err := g.writeParkedLocked(ctx, list)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		delete(g.replays, id)
	}
	if err != nil {
		return err
	}
	g.parked = list
	return nil
}

// writeParkedLocked stores the parked list as the next revision. Called with
// parkMu held.
func (g *group) writeParkedLocked(ctx context.Context, list []parkedEntry) error {
	data, err := json.Marshal(parkedList{Events: list})
	if err != nil {
		return err
	}
	if err := g.m.snap.CommitSnapshot(ctx, cairn.Snapshot{StreamID: g.def().parkedID(), Version: g.parkedRev + 1, Data: data}); err != nil {
		return fmt.Errorf("parked events of %s: %w", g.name, err)
	}
	g.parkedRev++
	return nil
}

// parkedEvents returns the first max entries of the parked list (all
// when max ≤ 0) and its length.
func (g *group) parkedEvents(max int) ([]ParkedEvent, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.parked)
	if max > 0 {
		n = min(n, max)
	}
	out := make([]ParkedEvent, n)
	for i, p := range g.parked[:n] {
		out[i] = ParkedEvent{ID: p.ID, Stream: p.Stream, Version: p.Version, Position: p.Position, Reason: p.Reason, Parked: p.Parked, Replaying: g.replays[p.ID]}
	}
	return out, len(g.parked)
}

func (g *group) replay(ctx context.Context, limit int) (int, error) {
	g.mu.Lock()
	var todo []parkedEntry
	for _, p := range g.parked {
		if limit > 0 && len(todo) == limit {
			break
		}
		if !g.replays[p.ID] {
			g.replays[p.ID] = true
			todo = append(todo, p)
		}
	}
	g.mu.Unlock()
	var (
		items []*item
		gone  []uuid.UUID
		err   error
	)
	d := g.def()
	for i, p := range todo {
		n := p.Position
		if !g.all {
			n = uint64(p.Version)
		}
		var page links.Page
		page, err = readPage(ctx, g.m.links, d.Stream, n, 1, d.ResolveLinks)
		if err != nil {
			g.mu.Lock()
			for _, p := range todo[i:] {
				delete(g.replays, p.ID)
			}
			g.mu.Unlock()
			break
		}
		if len(page.Events) == 0 || page.Events[0].Event.ID != p.ID {
			g.m.log.Warn("parked event no longer in the store; dropping it", "group", g.name, "id", p.ID, "position", p.Position)
			gone = append(gone, p.ID)
			continue
		}
		r := &page.Events[0]
		items = append(items, &item{ev: r.Event, link: r.Link, target: r.Target, n: g.number(&r.Event), replay: true})
	}
	g.mu.Lock()
	g.retry = append(g.retry, items...)
	g.changedLocked()
	g.mu.Unlock()
	if uerr := g.unpark(ctx, gone); err == nil {
		err = uerr
	}
	return len(items), err
}

// parkPending parks the events that reached the retry limit.
func (g *group) parkPending(ctx context.Context) error {
	g.mu.Lock()
	items := g.toPark
	g.toPark = nil
	g.mu.Unlock()
	for i, it := range items {
		if err := g.park(ctx, items[i:i+1], fmt.Sprintf("retried %d times", it.retries-1)); err != nil {
			g.mu.Lock()
			g.toPark = append(g.toPark, items[i+1:]...)
			g.mu.Unlock()
			return err
		}
	}
	return nil
}
