package cairnv1

import (
	"github.com/cairndb/cairn"
)

// FromQuery converts a query to its wire form.
func FromQuery(q cairn.Query) *Query {
	out := &Query{Items: make([]*QueryItem, len(q.Items))}
	for i, it := range q.Items {
		out.Items[i] = &QueryItem{Types: it.Types, Tags: it.Tags}
	}
	return out
}

// ToQuery converts the wire form of a query; nil is the empty query.
func ToQuery(q *Query) cairn.Query {
	var out cairn.Query
	for _, it := range q.GetItems() {
		out.Items = append(out.Items, cairn.QueryItem{Types: it.GetTypes(), Tags: it.GetTags()})
	}
	return out
}

// FromCondition converts an append condition to its wire form; nil stays
// nil.
func FromCondition(c *cairn.AppendCondition) *AppendCondition {
	if c == nil {
		return nil
	}
	return &AppendCondition{FailIfEventsMatch: FromQuery(c.FailIfEventsMatch), After: c.After}
}

// ToCondition converts the wire form of an append condition; nil stays nil.
func ToCondition(c *AppendCondition) *cairn.AppendCondition {
	if c == nil {
		return nil
	}
	out := &cairn.AppendCondition{FailIfEventsMatch: ToQuery(c.GetFailIfEventsMatch())}
	if c.After != nil {
		after := c.GetAfter()
		out.After = &after
	}
	return out
}

// FromIndexKey converts an index key to its wire form.
func FromIndexKey(k cairn.IndexKey) *IndexKey {
	return &IndexKey{Kind: IndexKind(k.Kind), Value: k.Value}
}

// ToIndexKey converts the wire form of an index key. An unknown kind stays
// unknown, for the Store to refuse.
func ToIndexKey(k *IndexKey) cairn.IndexKey {
	return cairn.IndexKey{Kind: cairn.IndexKind(k.GetKind()), Value: k.GetValue()}
}

// FromIndexedEvent converts an index entry to its wire form.
func FromIndexedEvent(e cairn.IndexedEvent) *IndexedEvent {
	out := &IndexedEvent{Number: e.Number, Position: e.Position, Found: e.Found}
	if e.Found {
		out.Event = FromEvent(e.Event)
	}
	return out
}

// ToIndexedEvent converts the wire form of an index entry.
func ToIndexedEvent(e *IndexedEvent) (cairn.IndexedEvent, error) {
	out := cairn.IndexedEvent{Number: e.GetNumber(), Position: e.GetPosition(), Found: e.GetFound()}
	if out.Found {
		ev, err := ToEvent(e.GetEvent())
		if err != nil {
			return out, err
		}
		out.Event = ev
	}
	return out, nil
}
