package projections

import "context"

// Builtin is a projection the system provides rather than a query, such as
// KurrentDB's standard projections. A Manager given builtins in
// [Options.Builtins] lists them in Statistics (as continuous projections),
// routes Enable, Disable, Abort and Reset to them, and refuses to create,
// update or delete them; State and Result return no state for them.
//
// Implementations must be safe for concurrent use.
type Builtin interface {
	// Name is the projection's name; it starts with '$'.
	Name() string
	// Statistics reports the projection's status. The Manager sets Name,
	// EffectiveName and Mode.
	Statistics(ctx context.Context) Statistics
	// Enable starts the projection and keeps it on across restarts.
	Enable(ctx context.Context) error
	// Disable stops the projection and keeps it off across restarts;
	// checkpoint is false for an Abort, which need not record progress.
	Disable(ctx context.Context, checkpoint bool) error
	// Reset makes the projection start again from the beginning.
	Reset(ctx context.Context) error
}

// BuiltinUpdater is a [Builtin] whose query can be updated, such as
// KurrentDB's $by_category, which takes the category separator as its
// query. The Manager's Update calls it; it refuses to update a Builtin
// that is not one.
type BuiltinUpdater interface {
	Builtin
	// Update checks and applies query; a query the projection cannot have
	// is an error matching [cairn.ErrInvalidArgument].
	Update(ctx context.Context, query string) error
}
