package projections

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// querySpec is what a query declares when it runs for the first time (its
// definition phase): where its events come from, how its state is
// partitioned, and what it outputs.
type querySpec struct {
	AllStreams bool     // fromAll()
	Streams    []string // fromStream(), fromStreams()
	Categories []string // fromCategory(), fromCategories()
	ByStream   bool     // foreachStream()
	ByCustom   bool     // partitionBy()
	BiState    bool     // $initShared, or options({biState: true})
	// AllEvents passes every event to the handlers; otherwise only the
	// types in Events (those with a named handler).
	AllEvents      bool
	Events         []string
	HandlesDeleted bool
	OutputState    bool
	Transforms     int
	IncludeLinks   bool
	ReorderEvents  bool
	ProcessingLag  int
	// ResultStreamName and PartitionResultPattern come from
	// options({resultStreamName}) and outputTo().
	ResultStreamName       string
	PartitionResultPattern string
}

func (q *querySpec) partitioned() bool { return q.ByStream || q.ByCustom }

// scriptLimits are the budgets and limits a script runs under.
type scriptLimits struct {
	maxStateBytes int
	maxEventBytes int
	maxEmits      int
	callDepth     int
	builtinLimit  int
}

// script is a query compiled into its own goja runtime. It is not safe for
// concurrent use: the goroutine that runs the projection owns it.
type script struct {
	name   string
	rt     *goja.Runtime
	spec   querySpec
	lim    scriptLimits
	guard  *guard
	log    *slog.Logger
	parse  goja.Callable // JSON.parse as it was before the query ran
	proto  *goja.Object  // the prototype of the event objects
	chain  *goja.Object  // what the selectors and filters return
	broken error         // a Go panic escaped a call: the runtime is unusable

	init, initShared, anyHandler, deleted, partitionFn goja.Callable
	handlers                                           map[string]goja.Callable
	created                                            []goja.Callable
	transforms                                         []transform
	callNames                                          map[string]string // handlerCall's names

	// Set during a handler call.
	inHandler bool
	emitOK    bool
	emits     []emitted
	violation error // emit without emit enabled: faults even if caught
	cause     string
}

type transform struct {
	filter bool
	fn     goja.Callable
}

// emitted is an event a handler asked to write.
type emitted struct {
	stream string
	typ    string
	data   []byte
	meta   []byte
	binary bool
}

// compileScript runs query's definition phase in a new runtime watched by
// w. A query that does not compile, throws, or declares nothing to read
// gives an error matching cairn.ErrInvalidArgument.
func compileScript(name, query string, lim scriptLimits, w *watchdog, log *slog.Logger) (*script, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(lim.callDepth)
	s := &script{name: name, rt: rt, lim: lim, log: log, handlers: map[string]goja.Callable{}, callNames: map[string]string{}}
	s.spec.AllEvents = true
	if err := s.setup(); err != nil {
		return nil, err
	}
	s.guard = w.watch(rt)
	err := s.call("the query's definition", func() error {
		_, err := rt.RunScript(name+".js", query)
		return err
	})
	if err != nil {
		s.close()
		return nil, invalidf("query", "%v", err)
	}
	if err := s.finishDefinition(); err != nil {
		s.close()
		return nil, invalidf("query", "%v", err)
	}
	return s, nil
}

// close releases the runtime's watch.
func (s *script) close() {
	if s.guard != nil {
		s.guard.release()
	}
}

func (s *script) setup() error {
	rt := s.rt
	parse, ok := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("parse"))
	if !ok {
		return errors.New("JSON.parse is not a function")
	}
	s.parse = parse
	if err := harden(rt, s.lim.builtinLimit); err != nil {
		return err
	}
	s.proto = s.eventPrototype()
	s.chain = rt.NewObject()
	defs := map[string]func(goja.FunctionCall) goja.Value{
		"options":        s.jsOptions,
		"fromAll":        s.jsFromAll,
		"fromStream":     s.jsFromStream,
		"fromStreams":    s.jsFromStreams,
		"fromCategory":   s.jsFromCategory,
		"fromCategories": s.jsFromCategory,
		"on_event":       s.jsOnEvent,
		"on_any":         s.jsOnAny,
	}
	for n, f := range defs {
		if err := rt.Set(n, f); err != nil {
			return err
		}
	}
	funcs := map[string]func(goja.FunctionCall) goja.Value{
		"emit":         s.jsEmit,
		"linkTo":       s.jsLinkTo,
		"linkStreamTo": s.jsLinkStreamTo,
		"copyTo":       func(goja.FunctionCall) goja.Value { return goja.Undefined() },
		"log":          s.jsLog,
	}
	for n, f := range funcs {
		if err := rt.Set(n, f); err != nil {
			return err
		}
	}
	return nil
}

// chainMethods lists, for each step of a query, the calls that may follow
// it, as KurrentDB allows them.
var chainMethods = map[string][]string{
	"fromStream":    {"when", "partitionBy", "outputState"},
	"fromAll":       {"when", "partitionBy", "outputState", "foreachStream"},
	"fromStreams":   {"when", "partitionBy", "outputState"},
	"fromCategory":  {"when", "partitionBy", "outputState", "foreachStream"},
	"when":          {"transformBy", "filterBy", "outputState", "outputTo"},
	"foreachStream": {"when"},
	"outputState":   {"transformBy", "filterBy", "outputTo"},
	"partitionBy":   {"when"},
	"transformBy":   {"transformBy", "filterBy", "outputState", "outputTo"},
	"filterBy":      {"transformBy", "filterBy", "outputState", "outputTo"},
	"outputTo":      {},
}

// restrict makes the chain offer the calls that may follow step.
func (s *script) restrict(step string) goja.Value {
	for _, k := range s.chain.Keys() {
		_ = s.chain.Delete(k)
	}
	methods := map[string]func(goja.FunctionCall) goja.Value{
		"when":          s.jsWhen,
		"partitionBy":   s.jsPartitionBy,
		"outputState":   s.jsOutputState,
		"foreachStream": s.jsForeachStream,
		"transformBy":   s.jsTransformBy,
		"filterBy":      s.jsFilterBy,
		"outputTo":      s.jsOutputTo,
	}
	for _, m := range chainMethods[step] {
		_ = s.chain.Set(m, methods[m])
	}
	return s.chain
}

func (s *script) throw(format string, args ...any) {
	panic(s.rt.NewTypeError(fmt.Sprintf(format, args...)))
}

func (s *script) selected() bool {
	return s.spec.AllStreams || len(s.spec.Streams) > 0 || len(s.spec.Categories) > 0
}

func (s *script) selectOnce(what string) {
	if s.selected() {
		s.throw("%s: the query already selects its events; use one of fromAll, fromStream, fromStreams or fromCategory", what)
	}
}

func (s *script) jsFromAll(goja.FunctionCall) goja.Value {
	s.selectOnce("fromAll")
	s.spec.AllStreams = true
	return s.restrict("fromAll")
}

func (s *script) jsFromStream(call goja.FunctionCall) goja.Value {
	s.selectOnce("fromStream")
	st, ok := call.Argument(0).Export().(string)
	if !ok || st == "" {
		s.throw("fromStream: the stream must be a non-empty string")
	}
	s.spec.Streams = []string{st}
	return s.restrict("fromStream")
}

// stringArgs returns the strings of call's arguments, or of its first
// argument when that is an array.
func (s *script) stringArgs(what string, call goja.FunctionCall) []string {
	args := call.Arguments
	if len(args) == 1 {
		if o, ok := args[0].(*goja.Object); ok && o.ClassName() == "Array" {
			n := o.Get("length").ToInteger()
			args = make([]goja.Value, 0, n)
			for i := range n {
				args = append(args, o.Get(fmt.Sprint(i)))
			}
		}
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		str, ok := a.Export().(string)
		if !ok || str == "" {
			s.throw("%s: every name must be a non-empty string", what)
		}
		out = append(out, str)
	}
	return out
}

func (s *script) jsFromStreams(call goja.FunctionCall) goja.Value {
	s.selectOnce("fromStreams")
	streams := s.stringArgs("fromStreams", call)
	if len(streams) == 0 {
		s.throw("fromStreams: name at least one stream")
	}
	s.spec.Streams = streams
	return s.restrict("fromStreams")
}

func (s *script) jsFromCategory(call goja.FunctionCall) goja.Value {
	if len(call.Arguments) == 0 {
		return s.chain
	}
	s.selectOnce("fromCategory")
	s.spec.Categories = s.stringArgs("fromCategory", call)
	return s.restrict("fromCategory")
}

func (s *script) jsWhen(call goja.FunctionCall) goja.Value {
	if o, ok := call.Argument(0).(*goja.Object); ok {
		for _, k := range o.Keys() {
			if fn, ok := goja.AssertFunction(o.Get(k)); ok {
				s.addHandler(k, fn)
			}
		}
	}
	return s.restrict("when")
}

func (s *script) jsOnEvent(call goja.FunctionCall) goja.Value {
	name, ok := call.Argument(0).Export().(string)
	fn, isFn := goja.AssertFunction(call.Argument(1))
	if !ok || !isFn || len(call.Arguments) != 2 {
		s.throw("on_event: call it with an event type and a handler")
	}
	s.addHandler(name, fn)
	return goja.Undefined()
}

func (s *script) jsOnAny(call goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok || len(call.Arguments) != 1 {
		s.throw("on_any: call it with a handler")
	}
	s.addHandler("$any", fn)
	return goja.Undefined()
}

func (s *script) addHandler(name string, fn goja.Callable) {
	switch name {
	case "$init":
		s.init = fn
	case "$initShared":
		if s.deleted != nil {
			s.throw("Cannot handle deletes in bi-state projections")
		}
		s.spec.BiState = true
		s.initShared = fn
	case "$any":
		s.anyHandler = fn
	case "$created":
		s.created = append(s.created, fn)
	case "$deleted":
		if s.spec.BiState {
			s.throw("Cannot handle deletes in bi-state projections")
		}
		s.spec.HandlesDeleted = true
		s.deleted = fn
	default:
		if _, dup := s.handlers[name]; dup {
			s.throw("the event type %q has two handlers", name)
		}
		s.handlers[name] = fn
	}
}

func (s *script) jsPartitionBy(call goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		s.throw("partitionBy: the argument must be a function")
	}
	s.partitionFn = fn
	s.spec.ByCustom = true
	return s.restrict("partitionBy")
}

func (s *script) jsForeachStream(goja.FunctionCall) goja.Value {
	s.spec.ByStream = true
	return s.restrict("foreachStream")
}

func (s *script) jsOutputState(goja.FunctionCall) goja.Value {
	s.spec.OutputState = true
	return s.restrict("outputState")
}

func (s *script) jsTransformBy(call goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		s.throw("transformBy: the argument must be a function")
	}
	s.transforms = append(s.transforms, transform{fn: fn})
	s.spec.OutputState = true
	return s.restrict("transformBy")
}

func (s *script) jsFilterBy(call goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		s.throw("filterBy: the argument must be a function")
	}
	s.transforms = append(s.transforms, transform{filter: true, fn: fn})
	s.spec.OutputState = true
	return s.restrict("filterBy")
}

func (s *script) jsOutputTo(call goja.FunctionCall) goja.Value {
	if len(call.Arguments) != 1 && len(call.Arguments) != 2 {
		s.throw("outputTo: call it with a result stream and, optionally, a partition result stream pattern")
	}
	stream, ok := call.Argument(0).Export().(string)
	if !ok {
		s.throw("outputTo: the result stream must be a string")
	}
	s.spec.ResultStreamName = stream
	if len(call.Arguments) == 2 {
		pattern, ok := call.Argument(1).Export().(string)
		if !ok {
			s.throw("outputTo: the partition result stream pattern must be a string")
		}
		s.spec.PartitionResultPattern = pattern
	}
	s.spec.OutputState = true
	return s.restrict("outputTo")
}

// jsOptions accepts KurrentDB's options, by name in any case, and refuses
// any other, as KurrentDB does.
func (s *script) jsOptions(call goja.FunctionCall) goja.Value {
	o, ok := call.Argument(0).(*goja.Object)
	if !ok {
		return goja.Undefined()
	}
	for _, k := range o.Keys() {
		v := o.Get(k)
		invalid := func() { s.throw("options: invalid value for %s", k) }
		switch strings.ToLower(k) {
		case "$includelinks":
			b, ok := v.Export().(bool)
			if !ok {
				invalid()
			}
			s.spec.IncludeLinks = b
		case "reorderevents":
			b, ok := v.Export().(bool)
			if !ok {
				invalid()
			}
			s.spec.ReorderEvents = b
		case "processinglag":
			if !goja.IsNumber(v) {
				invalid()
			}
			s.spec.ProcessingLag = int(v.ToInteger())
		case "resultstreamname":
			str, ok := v.Export().(string)
			if !ok {
				invalid()
			}
			s.spec.ResultStreamName = str
		case "bistate":
			b, ok := v.Export().(bool)
			if !ok {
				invalid()
			}
			s.spec.BiState = s.spec.BiState || b
		default:
			s.throw("Unrecognized option: %s", k)
		}
	}
	return goja.Undefined()
}

// finishDefinition checks what the query declared and removes the
// definition functions, as KurrentDB does once a query has run.
func (s *script) finishDefinition() error {
	if !s.selected() {
		return errors.New("the query selects no events: start it with fromAll(), fromStream(), fromStreams() or fromCategory()")
	}
	if len(s.handlers) > 0 && s.anyHandler == nil {
		s.spec.AllEvents = false
		for t := range s.handlers {
			s.spec.Events = append(s.spec.Events, t)
		}
		slices.Sort(s.spec.Events)
	}
	if s.spec.ByStream && s.spec.ByCustom {
		return errors.New("the query partitions its state twice: use foreachStream() or partitionBy(), not both")
	}
	if s.spec.ResultStreamName != "" {
		if err := validateOutputStream("result stream", s.spec.ResultStreamName); err != nil {
			return err
		}
	}
	s.spec.Transforms = len(s.transforms)
	for _, n := range []string{"options", "fromAll", "fromStream", "fromStreams", "fromCategory", "fromCategories", "on_event", "on_any"} {
		if err := s.rt.GlobalObject().Delete(n); err != nil {
			return err
		}
	}
	return nil
}

// call runs f, which calls into the runtime, under the budgets, and turns
// what can go wrong into an error: an exception the script threw, a budget
// exceeded, a stack overflow, or a Go panic (after which the runtime is
// not used again).
func (s *script) call(what string, f func() error) (err error) {
	if s.broken != nil {
		return s.broken
	}
	s.guard.enter(what)
	defer func() {
		if x := recover(); x != nil {
			s.broken = fmt.Errorf("%s: the JavaScript runtime failed: %v", what, x)
			err = s.broken
		}
		// A budget exceeded while Go code of the call ran (no JavaScript
		// instruction left to stop) still fails the call.
		if b := s.guard.leave(); b != nil && err == nil {
			err = b
		}
	}()
	err = f()
	if err == nil {
		return nil
	}
	var intr *goja.InterruptedError
	if errors.As(err, &intr) {
		if b, ok := intr.Value().(*BudgetError); ok {
			return b
		}
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fmt.Errorf("%s: maximum call stack size exceeded", what)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return &ScriptError{Call: what, Message: ex.Error()}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ScriptError is an exception a projection's JavaScript threw.
type ScriptError struct {
	// Call names the JavaScript that threw: a handler, partitionBy, a
	// transform or the query's definition.
	Call string
	// Message is the exception as JavaScript shows it, with where it was
	// thrown.
	Message string
}

func (e *ScriptError) Error() string { return e.Call + ": " + e.Message }

// marshal serializes v with the state limit, inside a guarded call.
func (s *script) marshal(v goja.Value, limit int, what string) ([]byte, error) {
	b, err := marshalJS(s.rt, v, limit)
	if err != nil {
		return nil, fmt.Errorf("%s cannot be written: %w", what, err)
	}
	return b, nil
}

// unmarshal parses JSON into a JavaScript value; nil is null.
func (s *script) unmarshal(b []byte) (goja.Value, error) {
	if b == nil {
		return goja.Null(), nil
	}
	return s.parse(goja.Undefined(), s.rt.ToValue(string(b)))
}

func (s *script) jsLog(call goja.FunctionCall) goja.Value {
	parts := make([]string, 0, len(call.Arguments))
	for _, a := range call.Arguments {
		if o, ok := a.(*goja.Object); ok {
			if b, err := marshalJS(s.rt, o, s.lim.maxStateBytes); err == nil && b != nil {
				parts = append(parts, string(b))
				continue
			}
		}
		parts = append(parts, a.String())
	}
	s.log.Debug(strings.Join(parts, " "), "projection", s.name)
	return goja.Undefined()
}
