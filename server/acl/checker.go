package acl

import (
	"context"
	"errors"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/auth"
)

// Checker decides requests against the ACLs kept in a Store: a stream's
// own in its metadata stream ("$$" and its name, the last event's $acl),
// the defaults in the last event of $settings.
//
// A Checker keeps nothing between calls: it reads the stream's metadata,
// and $settings when the stream's ACL does not name the operation, at each
// check, so that a change is in force for the next request, on every node
// that shares the Store. An administrator costs no read. It is safe for
// concurrent use.
type Checker struct {
	store *cairn.Store
}

// NewChecker returns a Checker that reads the ACLs of store.
func NewChecker(store *cairn.Store) *Checker { return &Checker{store: store} }

// Check returns nil when the principal of ctx may perform op on stream, a
// [*DeniedError] when it may not, or the error that kept it from reading
// the ACLs. A request without a principal is anonymous: it holds only
// [auth.RoleAll]. For a metadata stream ("$$x") the metadata operations of
// x apply ([Target]).
func (c *Checker) Check(ctx context.Context, op Operation, stream string) error {
	p, _ := auth.FromContext(ctx)
	return c.CheckUser(ctx, p, op, stream)
}

// CheckUser is [Checker.Check] for the principal p.
func (c *Checker) CheckUser(ctx context.Context, p auth.Principal, op Operation, stream string) error {
	targetOp, target, err := Target(op, stream)
	if err != nil {
		return &DeniedError{User: p.Name, Op: op, Stream: stream, Reason: err.Error()}
	}
	denied := &DeniedError{User: p.Name, Op: targetOp, Stream: target}
	if target == AllStream && (targetOp == Write || targetOp == Delete) {
		denied.Reason = "$all is the global log, which no one writes or deletes"
		return denied
	}
	if p.IsAdmin() {
		return nil
	}
	own, err := c.streamACL(ctx, target)
	var bad *badACLError
	if errors.As(err, &bad) {
		// An ACL that cannot be read grants nothing.
		denied.Reason = bad.Error()
		return denied
	}
	if err != nil {
		return err
	}
	var settings Settings
	if own.Roles(targetOp) == nil {
		settings, err = c.Settings(ctx)
		if errors.As(err, &bad) {
			denied.Reason = bad.Error()
			return denied
		}
		if err != nil {
			return err
		}
	}
	if Allowed(p, targetOp, target, own, settings) {
		return nil
	}
	return denied
}

// badACLError is an ACL in the Store that cannot be read.
type badACLError struct{ err error }

func (e *badACLError) Error() string { return e.err.Error() }

// streamACL reads the ACL in the metadata of stream.
func (c *Checker) streamACL(ctx context.Context, stream string) (ACL, error) {
	data, found, err := c.last(ctx, metaPrefix+stream)
	if err != nil || !found {
		return ACL{}, err
	}
	a, err := FromMetadata(data)
	if err != nil {
		return ACL{}, &badACLError{err: err}
	}
	return a, nil
}

// Settings returns the default ACLs of the Store: the last event of
// $settings, or none when it has none.
func (c *Checker) Settings(ctx context.Context) (Settings, error) {
	data, found, err := c.last(ctx, SettingsStream)
	if err != nil || !found {
		return Settings{}, err
	}
	s, err := ParseSettings(data)
	if err != nil {
		return Settings{}, &badACLError{err: err}
	}
	return s, nil
}

// last returns the data of the last event of stream, and false when it
// has none.
func (c *Checker) last(ctx context.Context, stream string) ([]byte, bool, error) {
	events, err := c.store.ReadStream(ctx, stream, cairn.StreamEnd, 1, cairn.Backward)
	if errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && len(events) == 0) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return events[0].Data, true, nil
}
