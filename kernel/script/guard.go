package script

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/anelab/anelab/kernel/lab"
)

// DefaultHookTimeout bounds one call of a hook (LR or OnStep) during training.
const DefaultHookTimeout = 5 * time.Second

// Guard runs a spec's hooks during training on the training goroutine, with two shields:
//   - a panic in a hook is recovered, recorded as a KindPanic *Error with the script's stack,
//     and the hook is disabled;
//   - a watchdog checks every in-flight call; one that runs longer than the timeout is
//     recorded as KindTimeout and the interpreter is stopped, which makes the spinning hook
//     return at its next statement.
//
// Either way onFail is called once (the harness cancels the run there) and every later call is
// a no-op: LR returns the scheduled value, OnStep does nothing. A stopped interpreter runs no
// more script code, so a Guard's Program must not be reused after a failure; the harness loads
// a fresh Program for every run that has hooks.
type Guard struct {
	p       *Program
	timeout time.Duration
	onFail  func(*Error)

	mu     sync.Mutex
	err    *Error
	failed atomic.Bool

	inLR, inStep atomic.Int64 // start (unix ns) of the call in flight, 0 when none
	stopEval     context.CancelFunc
	quit         chan struct{}
	closeOnce    sync.Once
	wg           sync.WaitGroup
}

// Guard prepares spec's hooks for a run. timeout ≤ 0 means DefaultHookTimeout. Call Close when
// the run ends.
func (p *Program) Guard(spec lab.Spec, timeout time.Duration, onFail func(*Error)) *Guard {
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	g := &Guard{p: p, timeout: timeout, onFail: onFail, quit: make(chan struct{})}
	if spec.LR == nil && spec.OnStep == nil {
		return g
	}
	// The only way to stop interpreted code that a compiled caller entered is the stop that
	// EvalWithContext performs when its context ends. So park one evaluation on an empty
	// select for the whole run; cancelling it stops every running frame of this interpreter.
	// The parked evaluation calls back when it has been compiled and is about to block, so
	// that it never runs the compiler while a hook runs.
	ctx, cancel := context.WithCancel(context.Background())
	g.stopEval = cancel
	ready := make(chan struct{})
	var once sync.Once
	err := p.in.Use(interp.Exports{"anelabhost/anelabhost": {
		"Parked": reflect.ValueOf(func() { once.Do(func() { close(ready) }) }),
	}})
	if err == nil {
		_, err = p.in.Eval(`import "anelabhost"`)
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		defer once.Do(func() { close(ready) }) // if it fails before parking
		defer func() { _ = recover() }()
		if err == nil {
			_, _ = p.in.EvalWithContext(ctx, "anelabhost.Parked(); select {}")
		} else { // cannot happen with yaegi v0.16.1; park without the handshake
			once.Do(func() { close(ready) })
			_, _ = p.in.EvalWithContext(ctx, "select {}")
		}
	}()
	<-ready
	go func() {
		defer g.wg.Done()
		g.watch()
	}()
	return g
}

// LR is spec.LR behind the shields, or nil when the spec has none.
func (g *Guard) LR(f func(int, float64) float64) func(int, float64) float64 {
	if f == nil {
		return nil
	}
	return func(step int, scheduled float64) (lr float64) {
		if g.failed.Load() {
			return scheduled
		}
		g.inLR.Store(time.Now().UnixNano())
		defer g.inLR.Store(0)
		defer func() {
			if r := recover(); r != nil {
				g.fail(&Error{Kind: KindPanic, Path: g.p.Path, Msg: fmt.Sprintf("panic in the LR hook at step %d: %v", step, r),
					Stack: g.p.scriptStack()})
			}
			if g.failed.Load() {
				lr = scheduled
			}
		}()
		return f(step, scheduled)
	}
}

// OnStep is spec.OnStep behind the shields, or nil when the spec has none.
func (g *Guard) OnStep(f func(lab.Event)) func(lab.Event) {
	if f == nil {
		return nil
	}
	return func(e lab.Event) {
		if g.failed.Load() {
			return
		}
		g.inStep.Store(time.Now().UnixNano())
		defer g.inStep.Store(0)
		defer func() {
			if r := recover(); r != nil {
				g.fail(&Error{Kind: KindPanic, Path: g.p.Path, Msg: fmt.Sprintf("panic in the OnStep hook at step %d: %v", e.Step, r),
					Stack: g.p.scriptStack()})
			}
		}()
		f(e)
	}
}

// Err is the first hook failure, or nil.
func (g *Guard) Err() *Error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Close ends the watchdog and releases the interpreter's parked evaluation.
func (g *Guard) Close() {
	g.closeOnce.Do(func() {
		close(g.quit)
		if g.stopEval != nil {
			g.stopEval()
		}
	})
	g.wg.Wait()
}

func (g *Guard) fail(e *Error) {
	g.mu.Lock()
	first := g.err == nil
	if first {
		g.err = e
	}
	g.mu.Unlock()
	if !first {
		return
	}
	g.failed.Store(true)
	if g.onFail != nil {
		g.onFail(e)
	}
}

func (g *Guard) watch() {
	period := g.timeout / 10
	if period < 5*time.Millisecond {
		period = 5 * time.Millisecond
	}
	if period > 250*time.Millisecond {
		period = 250 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-g.quit:
			return
		case now := <-t.C:
			for _, h := range []struct {
				name  string
				start *atomic.Int64
			}{{"LR", &g.inLR}, {"OnStep", &g.inStep}} {
				s := h.start.Load()
				if s == 0 || now.Sub(time.Unix(0, s)) < g.timeout {
					continue
				}
				g.fail(&Error{Kind: KindTimeout, Path: g.p.Path, Msg: fmt.Sprintf("the %s hook did not return within %v "+
					"(an endless loop?); the script was stopped and the run ended", h.name, g.timeout)})
				g.stopEval() // the spinning hook returns at its next statement
				return
			}
		}
	}
}
