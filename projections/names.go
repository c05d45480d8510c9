package projections

import (
	"fmt"
	"strings"

	"github.com/cairndb/cairn"
)

// The streams and event types a projection keeps in the store, named as
// KurrentDB names them.
const (
	// streamPrefix starts every stream a projection owns.
	streamPrefix = "$projections-"
	// RegistryStream lists the projections: $ProjectionCreated and
	// $ProjectionDeleted events whose data is the projection's name.
	RegistryStream = streamPrefix + "$all"

	checkpointSuffix = "-checkpoint"
	resultSuffix     = "-result"
	partitionsSuffix = "-partitions"
	emittedSuffix    = "-emittedstreams"

	typeCreated         = "$ProjectionCreated"
	typeDeleted         = "$ProjectionDeleted"
	typeUpdated         = "$ProjectionUpdated"
	typeCheckpoint      = "$ProjectionCheckpoint"
	typePartitionState  = "$Checkpoint"
	typePartition       = "$partition"
	typeStreamTracked   = "$StreamTracked"
	typeResult          = "Result"
	typeLink            = "$>"
	typeStreamReference = "$@"
)

// maxNameBytes bounds a projection's name, so that its longest stream id,
// "$projections-<name>-emittedstreams", stays well inside
// [cairn.MaxStreamIDBytes] with room for partition names.
const maxNameBytes = 200

// names derives the ids of a projection's streams from its name and its
// query's output options.
type names struct {
	name string
	// result is the root partition's result stream: resultStreamName or
	// outputTo's first argument, else $projections-<name>-result.
	result string
	// partitionResult is outputTo's second argument, a pattern in which
	// "{0}" stands for the partition; empty means
	// $projections-<name>-<partition>-result.
	partitionResult string
}

func newNames(name string, spec *querySpec) names {
	n := names{name: name, result: streamPrefix + name + resultSuffix}
	if spec != nil {
		if spec.ResultStreamName != "" {
			n.result = spec.ResultStreamName
		}
		n.partitionResult = spec.PartitionResultPattern
	}
	return n
}

func (n names) definition() string { return streamPrefix + n.name }
func (n names) checkpoint() string { return streamPrefix + n.name + checkpointSuffix }
func (n names) partitions() string { return streamPrefix + n.name + partitionsSuffix }
func (n names) emitted() string    { return streamPrefix + n.name + emittedSuffix }

func (n names) partitionState(partition string) string {
	return streamPrefix + n.name + "-" + partition + checkpointSuffix
}

func (n names) resultOf(partition string) string {
	if partition == "" {
		return n.result
	}
	if n.partitionResult != "" {
		return strings.ReplaceAll(n.partitionResult, "{0}", partition)
	}
	return streamPrefix + n.name + "-" + partition + resultSuffix
}

// validateName checks a projection name: it becomes part of stream ids.
func validateName(name string) error {
	if name == "" {
		return invalidf("name", "must not be empty")
	}
	if len(name) > maxNameBytes {
		return invalidf("name", "is %d bytes long, the limit is %d", len(name), maxNameBytes)
	}
	if strings.HasPrefix(name, "$") {
		return invalidf("name", "%q starts with '$', which is reserved for the system's projections", name)
	}
	if err := cairn.ValidateStreamID(streamPrefix[1:] + name); err != nil {
		return invalidf("name", "%q cannot be part of a stream id: %v", name, err)
	}
	return nil
}

// validateOutputStream checks a stream a projection writes on behalf of its
// query (an emitted event's stream, a custom result stream): it must be a
// stream applications may write, and not another projection's.
func validateOutputStream(field, stream string) error {
	if err := cairn.ValidateStreamID(stream); err != nil {
		var inv *cairn.InvalidArgumentError
		if ok := asInvalid(err, &inv); ok {
			return invalidf(field, "%s", inv.Reason)
		}
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
