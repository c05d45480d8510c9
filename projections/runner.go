package projections

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cairndb/cairn"
)

// runStatus is where a runner is in its life.
type runStatus uint8

const (
	statusStopped runStatus = iota
	statusRunning
	statusFaulted
	statusCompleted
	statusAborted
)

// runner runs one version of one projection's definition on its own
// goroutine, which owns the JavaScript runtime, the states and everything
// not yet written. The Manager talks to it through ctl; the goroutine
// answers between two events, or while it waits for new ones. Statistics
// are published under mu.
type runner struct {
	m     *Manager
	name  string
	def   definition
	mode  Mode
	store *cairn.Store
	log   *slog.Logger

	ctl  chan ctlMsg
	done chan struct{}
	// ctx is cancelled to stop the goroutine without a checkpoint.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	stats runStats

	// Owned by the runner goroutine.
	processing bool
	exit       bool
	loaded     bool
	loadErr    error
	script     *script
	spec       querySpec
	names      names
	src        source
	pos        uint64          // the position to read next
	wait       <-chan struct{} // the store's change signal, when caught up
	root       *partState      // the state of a projection without partitions
	shared     *partState      // the shared state of a bi-state projection
	cache      *partCache
	evicted    map[string][]byte // dirty partitions out of the cache
	newParts   []string
	emits      []pendingEvent
	emitBytes  int
	tracked    map[string]bool
	newTracked []string
	cpVersion  int64 // of the checkpoint stream's last event; -1: none
	lastCP     mark
	lastCPTime time.Time
	cpCount    int
	handled    int // events handled since the last checkpoint
	scanned    int // events scanned since the last checkpoint
}

// runStats is what Statistics reports of a runner.
type runStats struct {
	status         runStatus
	reason         string
	position       string
	lastCheckpoint string
	progress       float32
	processed      int64
	partitions     int32
	buffered       int64
	pendingWrites  int32
	writing        bool
	reading        bool
	coreTime       time.Duration
	// src and next say where the projection is in its source, for Lags;
	// src is nil until the first page is processed.
	src  source
	next uint64
}

type pendingEvent struct {
	stream string
	event  cairn.EventData
}

type ctlKind uint8

const (
	ctlStart ctlKind = iota
	ctlStop
	ctlExit
	ctlState
	ctlResult
)

type ctlMsg struct {
	kind ctlKind
	// checkpoint: stop or exit after writing what is pending.
	checkpoint bool
	// aborted: the status after ctlStop is Aborted.
	aborted   bool
	partition string
	reply     chan ctlReply
}

type ctlReply struct {
	data []byte
	err  error
}

func (m *Manager) newRunner(name string, def definition) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{
		m:         m,
		name:      name,
		def:       def,
		mode:      def.mode(),
		store:     m.store,
		log:       m.log.With("projection", name),
		ctl:       make(chan ctlMsg),
		done:      make(chan struct{}),
		ctx:       ctx,
		cancel:    cancel,
		cpVersion: -1,
		evicted:   map[string][]byte{},
		cache:     newPartCache(m.opts.PartitionCacheSize),
	}
	r.stats.position = "C:-1/P:-1"
	go r.run()
	return r
}

// send delivers a message to the runner goroutine and waits for its reply.
func (r *runner) send(ctx context.Context, msg ctlMsg) ([]byte, error) {
	msg.reply = make(chan ctlReply, 1)
	select {
	case r.ctl <- msg:
	case <-r.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-msg.reply:
		return rep.data, rep.err
	case <-r.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop ends the runner's goroutine: after writing what is pending when
// checkpoint is set, at once otherwise.
func (r *runner) stop(ctx context.Context, checkpoint bool) error {
	if !checkpoint {
		r.cancel()
		<-r.done
		return nil
	}
	_, err := r.send(ctx, ctlMsg{kind: ctlExit, checkpoint: true})
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if err != nil {
		// The context ended first: stop without the checkpoint.
		r.cancel()
	}
	<-r.done
	return err
}

func (r *runner) snapshot() runStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *runner) setStatus(st runStatus, reason string) {
	r.mu.Lock()
	r.stats.status, r.stats.reason = st, reason
	r.mu.Unlock()
}

func (r *runner) run() {
	defer close(r.done)
	defer func() {
		if r.script != nil {
			r.script.close()
		}
	}()
	for !r.exit {
		if r.processing && r.wait == nil {
			if err := r.step(); err != nil {
				r.fail(err)
			}
			continue
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if r.processing {
			if d, ok := r.checkpointWait(); ok {
				timer = time.NewTimer(d)
				fire = timer.C
			}
		}
		select {
		case msg := <-r.ctl:
			r.handle(msg)
		case <-r.wait:
			r.wait = nil
		case <-fire:
			if err := r.checkpoint(); err != nil {
				r.fail(err)
			}
		case <-r.ctx.Done():
			r.exit = true
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// fail faults the projection, unless the runner is being stopped.
func (r *runner) fail(err error) {
	if r.ctx.Err() != nil {
		r.exit = true
		return
	}
	r.processing, r.wait = false, nil
	r.log.Warn("projection faulted", "reason", err)
	r.setStatus(statusFaulted, err.Error())
}

// poll handles the messages waiting for the runner, between two events.
func (r *runner) poll() {
	for {
		select {
		case msg := <-r.ctl:
			r.handle(msg)
		default:
			return
		}
	}
}

func (r *runner) handle(msg ctlMsg) {
	var rep ctlReply
	switch msg.kind {
	case ctlStart:
		if err := r.load(); err != nil {
			r.fail(err)
			break
		}
		r.processing, r.wait = true, nil
		r.setStatus(statusRunning, "")
	case ctlStop, ctlExit:
		if r.processing && msg.checkpoint {
			rep.err = r.checkpoint()
		}
		r.processing, r.wait = false, nil
		if msg.kind == ctlExit {
			r.exit = true
		} else if msg.aborted {
			r.setStatus(statusAborted, "")
		} else {
			r.setStatus(statusStopped, "")
		}
	case ctlState:
		rep.data, rep.err = r.state(msg.partition)
	case ctlResult:
		rep.data, rep.err = r.result(msg.partition)
	}
	msg.reply <- rep
}
