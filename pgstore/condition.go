package pgstore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5/pgconn"
)

// Append conditions.
//
// A condition is checked after the write has taken the head row's lock,
// in a statement that starts after the lock was taken: every event
// committed before is then visible to it, and no other write can commit
// events until this one ends. That is the point that orders positions, so
// the check and the write are atomic: no matching event can commit between
// them. A check made before the lock (a plain SELECT, then the write)
// would let two writers with the same condition both pass and both write.
//
// The schema's conditions_first does the check, for all the conditions of
// a write in one statement; append_group calls it for the appends of a
// group (whose head lock it then takes before checking any request),
// check_conditions for batches and commits with projections. Both look
// only at the events before the write's own, so that a batch's own events
// never fail its conditions. The appends of one group are apart: a
// conditional append whose query may match the events of an append taken
// into the group before it (committer.takeLocked says which) is checked against
// those events too, at the positions they get.

// conditionFailedCode is the SQLSTATE check_conditions raises.
const conditionFailedCode = "CA001"

// queryArgs is a query as the schema takes it: one element per item, its
// types and its tags joined by U+001F (NULL for none). A query that matches
// every event is one item with neither.
func queryArgs(q cairn.Query, types, tags []*string) ([]*string, []*string, int32) {
	if q.All() {
		return append(types, nil), append(tags, nil), 1
	}
	for _, it := range q.Items {
		types = append(types, joined(it.Types))
		tags = append(tags, joined(it.Tags))
	}
	return types, tags, int32(len(q.Items))
}

func joined(s []string) *string {
	if len(s) == 0 {
		return nil
	}
	j := strings.Join(s, tagSep)
	return &j
}

// afterArg is a condition's After as the schema takes it: -1 for none.
func afterArg(c *cairn.AppendCondition) int64 {
	if c.After == nil {
		return -1
	}
	// Positions are below MaxInt64; after the last possible one, nothing
	// can follow.
	return int64(min(*c.After, math.MaxInt64-1))
}

// conditions are the conditions of a write as the schema's
// conditions_first takes them: an element per item of their queries.
type conditions struct {
	reqs  []int32 // the item's request
	after []int64 // the request's After
	types []*string
	tags  []*string
}

// add adds the condition of request req.
func (c *conditions) add(req int32, cond *cairn.AppendCondition) {
	var n int32
	c.types, c.tags, n = queryArgs(cond.FailIfEventsMatch, c.types, c.tags)
	after := afterArg(cond)
	for range n {
		c.reqs = append(c.reqs, req)
		c.after = append(c.after, after)
	}
}

// conditionErrors turns check_conditions' error into the errors of the
// requests whose condition failed, in errs. It reports false when err is
// not that error.
func conditionErrors(err error, errs []error) (bool, error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != conditionFailedCode {
		return false, nil
	}
	for _, f := range strings.Fields(pgErr.Detail) {
		req, pos, ok := strings.Cut(f, ":")
		i, err1 := strconv.Atoi(req)
		p, err2 := strconv.ParseUint(pos, 10, 64)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= len(errs) {
			return true, fmt.Errorf("pgstore: append condition failed, with an outcome that cannot be read: %w", pgErr)
		}
		errs[i] = &cairn.ConditionError{Position: p}
	}
	return true, nil
}
