package subscription

import (
	"github.com/cairndb/cairn"
)

// Kind says what a [Message] carries.
type Kind uint8

const (
	// KindEvent carries an event.
	KindEvent Kind = iota + 1
	// KindCheckpoint reports progress through events a filter did not
	// pass: every event up to and including Message.Position was scanned.
	// A consumer that stores it resumes with After(Position) without
	// rescanning. Only subscriptions on $all with a filter send them.
	KindCheckpoint
	// KindCaughtUp says that the subscription has delivered everything
	// durable when it last read, and now follows new events live.
	KindCaughtUp
	// KindFellBehind says that a live subscription is more than
	// [Options.MaxLag] positions behind the newest event: it keeps going,
	// reading history again, and sends KindCaughtUp when it catches up.
	KindFellBehind
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindEvent:
		return "event"
	case KindCheckpoint:
		return "checkpoint"
	case KindCaughtUp:
		return "caught up"
	case KindFellBehind:
		return "fell behind"
	}
	return "unknown"
}

// Message is what a [Subscription] delivers.
type Message struct {
	Kind Kind
	// Event is the event of a KindEvent message: the event read, which
	// for a link is the link itself (see [links.Resolved]).
	Event cairn.Event
	// Link is set when the subscription resolves links
	// ([Options.ResolveLinks]) and Event is a link; Target is then the
	// event it names, or nil when that event is gone.
	Link   bool
	Target *cairn.Event
	// Position is the event's global position (KindEvent), the position
	// of the last event scanned (KindCheckpoint), or where the
	// subscription reads next (KindCaughtUp: a position on $all, a version
	// on a stream; every event before it was scanned, so a consumer may
	// resume with At(Position)).
	Position uint64
	// Lag is how many global positions the newest durable event known to
	// the store is ahead of this event when it is delivered: zero when the
	// consumer is up to date. It is set on KindEvent and KindFellBehind
	// messages.
	Lag uint64
}

// Parts returns the event and the link of a KindEvent message, in the form
// of KurrentDB's ResolvedEvent, as [links.Resolved.Parts] does.
func (m *Message) Parts() (event, link *cairn.Event) {
	if !m.Link {
		return &m.Event, nil
	}
	return m.Target, &m.Event
}
