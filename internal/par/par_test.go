package par

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct{ w, n, min int }{{1, 10, 1}, {2, 10, 1}, {3, 10, 4}, {8, 5, 1}, {2, 0, 1}, {4, 1000, 16}} {
		seen := make([]int, tc.n)
		workers := make([]bool, tc.w)
		For(tc.w, tc.n, tc.min, func(k, lo, hi int) {
			workers[k] = true
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("%+v: item %d visited %d times", tc, i, c)
			}
		}
	}
}

func TestEach(t *testing.T) {
	seen := make([]atomic.Int32, 37)
	Each(5, len(seen), func(k, i int) {
		if k >= 5 {
			t.Errorf("worker %d ≥ 5", k)
		}
		seen[i].Add(1)
	})
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Fatalf("item %d visited %d times", i, c)
		}
	}
}

// TestNested: a loop started inside a job runs (on the job's goroutine) instead of deadlocking.
func TestNested(t *testing.T) {
	var total atomic.Int64
	Each(4, 8, func(_, i int) {
		For(4, 100, 1, func(_, lo, hi int) { total.Add(int64(hi - lo)) })
	})
	if total.Load() != 800 {
		t.Fatalf("nested loops visited %d items, want 800", total.Load())
	}
}

func TestChunks(t *testing.T) {
	for _, c := range []struct{ w, n, min, want int }{
		{4, 1000, 16, 16}, // 4 parts per goroutine
		{4, 100, 16, 4},   // one per goroutine
		{4, 40, 16, 2},    // too small to give every goroutine a part
		{4, 3, 16, 1},
		{1, 1 << 20, 1, 4},
	} {
		if got := Chunks(c.w, c.n, c.min); got != c.want {
			t.Errorf("Chunks(%d, %d, %d) = %d, want %d", c.w, c.n, c.min, got, c.want)
		}
	}
}

// TestPoolLoops runs many loops of varying sizes and goroutine counts from two goroutines at once:
// every item is visited exactly once per loop, by a worker index below the loop's w.
func TestPoolLoops(t *testing.T) {
	done := make(chan error, 2)
	for g := range 2 {
		go func() {
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for it := range 300 {
				w, n := 1+r.IntN(4), r.IntN(200)
				seen := make([]int32, n)
				var bad atomic.Bool
				Run(w, n, Chunks(w, n, 1+r.IntN(8)), Func(func(k, lo, hi int) {
					if k < 0 || k >= w {
						bad.Store(true)
					}
					for i := lo; i < hi; i++ {
						seen[i]++
					}
				}))
				for i, c := range seen {
					if c != 1 || bad.Load() {
						done <- fmt.Errorf("loop %d (w %d, n %d): item %d visited %d times (bad worker: %v)", it, w, n, i, c, bad.Load())
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWorkersJoin: every worker of a loop of w goroutines takes part once the pool has been woken
// (a worker sleeping, spinning or new all get the loop).
func TestWorkersJoin(t *testing.T) {
	const w = 4
	for it := range 12 {
		var seen [w]atomic.Bool
		var arrived atomic.Int32
		// w parts that each wait until all w goroutines hold one: the loop ends only if all join.
		Run(w, w, w, Func(func(k, _, _ int) {
			seen[k].Store(true)
			arrived.Add(1)
			for arrived.Load() < w {
			}
		}))
		for k := range w {
			if !seen[k].Load() {
				t.Fatalf("round %d: worker %d did not take part", it, k)
			}
		}
		if it%4 == 0 {
			time.Sleep(2 * longSpin) // let the workers fall asleep
		}
	}
}

// BenchmarkLoop is the cost of one loop of w parts of almost no work each, w = GOMAXPROCS: what a
// loop adds to a step beyond its work (handing out parts, waking or catching the workers, the wait
// for the last part). gap is serial work on the caller between loops: with gaps longer than the
// workers' spin they fall asleep and each loop pays their wake-up. Multiply by the loops per step
// (anert/model TestLoopsPerStep; anebench prints them) for the step's share.
func BenchmarkLoop(b *testing.B) {
	w := Threads(0)
	for _, gap := range []time.Duration{0, 200 * time.Microsecond, 2 * longSpin} {
		b.Run(fmt.Sprintf("w=%d/gap=%v", w, gap), func(b *testing.B) {
			var sink atomic.Int64
			body := Func(func(_, lo, hi int) { sink.Add(int64(hi - lo)) })
			for b.Loop() {
				Run(w, w, w, body)
				if gap > 0 {
					for t := time.Now(); time.Since(t) < gap; {
					}
				}
			}
			if gap > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)-float64(gap.Nanoseconds()), "ns/loop-gap")
			}
		})
	}
}

// TestDeferred: a deferred job's parts each run exactly once — taken by workers at the ends of
// other loops and between them, the rest by Wait — while loops of varying sizes run and every
// item of theirs is still visited once; several deferred jobs are open at once, and a Deferred
// is reused after its Wait.
func TestDeferred(t *testing.T) {
	for _, slack := range []bool{false, true} {
		for _, yield := range []bool{true, false} {
			t.Run(fmt.Sprintf("slack=%v/yield=%v", slack, yield), func(t *testing.T) {
				SetFillSlack(slack)
				SetFillYield(yield)
				defer SetFillSlack(false)
				defer SetFillYield(true)
				testDeferred(t, nil)
			})
		}
	}
	t.Run("team pool", func(t *testing.T) { testDeferred(t, Team(3)) })
}

// testDeferred defers jobs to p's workers (nil: the process's pool) and runs loops on p meanwhile.
func testDeferred(t *testing.T, p *Pool) {
	r := rand.New(rand.NewPCG(7, 7))
	var ds [3]Deferred
	var byWorker atomic.Int64 // parts run by a pool worker (k ≥ 1) rather than Wait's caller
	for round := range 40 {
		counts := make([][]atomic.Int32, len(ds))
		for i := range ds {
			n := 1 + r.IntN(50)
			counts[i] = make([]atomic.Int32, n)
			c := counts[i]
			p.Defer(&ds[i], 4, n, n, Func(func(k, lo, hi int) {
				if k > 0 {
					byWorker.Add(1)
				}
				for x := lo; x < hi; x++ {
					c[x].Add(1)
				}
				time.Sleep(time.Duration(lo*7%21) * time.Microsecond) // parts of 0–20 µs
			}))
		}
		for range 20 {
			w, n := 1+r.IntN(4), r.IntN(100)
			seen := make([]atomic.Int32, n)
			p.Run(w, n, Chunks(w, n, 1), Func(func(k, lo, hi int) {
				for x := lo; x < hi; x++ {
					seen[x].Add(1)
				}
			}))
			for x := range seen {
				if c := seen[x].Load(); c != 1 {
					t.Fatalf("round %d: loop item %d visited %d times", round, x, c)
				}
			}
		}
		for i := range ds {
			ds[i].Wait(4)
			for x := range counts[i] {
				if c := counts[i][x].Load(); c != 1 {
					t.Fatalf("round %d: deferred job %d: part %d ran %d times", round, i, x, c)
				}
			}
		}
	}
	if byWorker.Load() == 0 {
		t.Error("no deferred part ran on a pool worker: the workers never took the deferred work")
	}
}

// TestDeferredRunTo: RunTo runs the unclaimed parts below its bound and no others, so that with
// the caller's count of finished parts a prefix of a deferred job is waited for in order
// (anert/model's deferred optimizer update); parts above the bound are still run exactly once,
// by workers between loops or by Wait.
func TestDeferredRunTo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var d Deferred
	for round := range 30 {
		n := 1 + r.IntN(80)
		counts := make([]atomic.Int32, n)
		Defer(&d, 4, n, n, Func(func(_, lo, hi int) {
			for x := lo; x < hi; x++ {
				time.Sleep(time.Duration(x%5) * time.Microsecond)
				counts[x].Add(1)
			}
		}))
		for upto := 0; upto <= n; upto += 1 + r.IntN(n/3+1) {
			Run(2, 10, 10, Func(func(_, _, _ int) {})) // a loop whose waits workers may fill
			d.RunTo(4, upto)
			for x := range upto { // each part below upto is claimed: it ends soon, by the caller or a worker
				for counts[x].Load() == 0 {
					runtime.Gosched()
				}
			}
		}
		d.Wait(4)
		for x := range counts {
			if c := counts[x].Load(); c != 1 {
				t.Fatalf("round %d: part %d of %d ran %d times", round, x, n, c)
			}
		}
	}
}

// TestDeferredRunToBound: RunTo on one goroutine runs no part at or above its bound (workers may
// take any part meanwhile, but the caller's — worker index 0 — are all below it).
func TestDeferredRunToBound(t *testing.T) {
	var d Deferred
	var byCaller [10]atomic.Int32
	var ran atomic.Int32
	for upto := range 11 {
		for i := range byCaller {
			byCaller[i].Store(0)
		}
		ran.Store(0)
		Defer(&d, 2, 10, 10, Func(func(k, lo, hi int) {
			if k == 0 {
				byCaller[lo].Add(1)
			}
			time.Sleep(50 * time.Microsecond) // long enough for the spinning workers to take parts too
			ran.Add(1)
		}))
		Run(4, 4, 4, Func(func(_, _, _ int) {})) // workers that spin after it fill with d's parts
		d.RunTo(1, upto)
		for i := upto; i < 10; i++ {
			if byCaller[i].Load() != 0 {
				t.Fatalf("RunTo(1, %d) ran part %d", upto, i)
			}
		}
		d.Wait(2)
		if n := ran.Load(); n != 10 {
			t.Fatalf("upto %d: %d parts ran, want 10", upto, n)
		}
	}
}

// TestDeferredAllocatesNothing: a deferred job reused step after step — Defer, RunTo, Wait, as
// anert/model's weight gradients and update run on 8 goroutines or more — allocates nothing (RunTo's
// loop job once did, boxed into the Job interface: 5 objects a training step).
func TestDeferredAllocatesNothing(t *testing.T) {
	var d Deferred
	j := Func(func(_, _, _ int) {})
	cycle := func() {
		Defer(&d, 4, 16, 16, j)
		d.RunTo(4, 8)
		d.Wait(4)
	}
	cycle()
	if n := testing.AllocsPerRun(20, cycle); n != 0 {
		t.Fatalf("%g allocations a Defer, RunTo, Wait", n)
	}
}

// TestRunHomed: a homed loop runs every part once, and every part of a segment is claimed before
// any part of the next: a part that waits for all the parts of the segments before it to start
// (as a chain's second stage waits for the first stage's rows) never waits forever. Seat is
// replaced by the worker index, so that on this machine's few cores each of the loop's goroutines
// has a seat of its own.
func TestRunHomed(t *testing.T) {
	SetSeatByWorker(true)
	defer SetSeatByWorker(false)
	for _, tc := range []struct {
		w, parts int
		segs     []int
	}{{4, 16, []int{16}}, {4, 16, []int{8, 16}}, {3, 10, []int{1, 7, 10}}, {8, 64, []int{32, 40, 64}}, {2, 5, []int{5}}} {
		for it := range 20 {
			seen := make([]atomic.Int32, tc.parts)
			var started atomic.Int32
			var bad atomic.Value
			RunHomed(tc.w, tc.parts, tc.parts, tc.segs, Func(func(k, lo, hi int) {
				seen[lo].Add(1)
				started.Add(1)
				a := 0 // where part lo's segment starts
				for _, e := range tc.segs {
					if lo < e {
						break
					}
					a = e
				}
				for t0 := time.Now(); int(started.Load()) < a+1; runtime.Gosched() {
					if time.Since(t0) > 5*time.Second {
						bad.Store(fmt.Sprintf("part %d waited 5 s for the %d parts before its segment to start (%d started)", lo, a, started.Load()))
						return
					}
				}
			}))
			if b := bad.Load(); b != nil {
				t.Fatalf("%+v, round %d: %s", tc, it, b)
			}
			for i := range seen {
				if c := seen[i].Load(); c != 1 {
					t.Fatalf("%+v, round %d: part %d ran %d times", tc, it, i, c)
				}
			}
		}
	}
	// With seats by worker index each goroutine's first part is from its own range, the caller's
	// (worker 0) from [0, 4): the parts wait until both goroutines hold one, so neither can take
	// all of them.
	var first [2]atomic.Int32
	var arrived atomic.Int32
	first[0].Store(-1)
	first[1].Store(-1)
	RunHomed(2, 8, 8, []int{8}, Func(func(k, lo, _ int) {
		if first[k].CompareAndSwap(-1, int32(lo)) {
			arrived.Add(1)
		}
		for arrived.Load() < 2 {
			runtime.Gosched()
		}
	}))
	if f0, f1 := first[0].Load(), first[1].Load(); f0 < 0 || f0 >= 4 || f1 < 4 {
		t.Fatalf("the goroutines' first parts were %d and %d, want one of [0, 4) and one of [4, 8)", f0, f1)
	}
}

// TestTeamPools: a loop on a team pool runs on that pool's own goroutines while a loop of the
// process's pool is in progress and loops on the other team pools run too — where on one pool it
// would run on its caller alone. Each of the team loops' two parts waits for the other to start,
// which only a second goroutine of the same loop can do.
func TestTeamPools(t *testing.T) {
	const teams = 3
	var failed atomic.Int32
	pair := func(p *Pool) {
		var started atomic.Int32
		p.Run(2, 2, 2, Func(func(_, _, _ int) {
			started.Add(1)
			deadline := time.Now().Add(10 * time.Second)
			for started.Load() < 2 {
				if time.Now().After(deadline) {
					failed.Add(1)
					return
				}
				runtime.Gosched()
			}
		}))
	}
	for range 20 {
		Run(teams, teams, teams, Func(func(_, lo, hi int) {
			for i := lo; i < hi; i++ {
				pair(Team(i))
			}
		}))
		if failed.Load() != 0 {
			t.Fatal("a team pool's loop ran on its caller alone: its parts never ran at once")
		}
	}
	if Team(1) != Team(1) || Team(0) == Team(1) || Team(0) == &workers {
		t.Fatal("Team(i) is not one pool per i, apart from the process's")
	}
}
