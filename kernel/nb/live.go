package nb

import (
	"encoding/base64"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/train"
)

// Live view timing: the status line is refreshed every liveTick; the small chart is redrawn at
// most every chartEvery.
const (
	liveTick   = 250 * time.Millisecond
	chartEvery = time.Second
)

// live is the transient progress block of one run: step, loss, tokens/s, time left, a progress
// bar and a small loss chart. Events arrive on the training goroutine and only append; a ticker
// goroutine renders, so a slow chart never slows training.
type live struct {
	id, title string
	now       func() time.Time

	mu      sync.Mutex
	pts     []train.Point
	last    train.Event
	seen    bool
	dirty   bool
	chart   string // base64 PNG of the last chart
	charted time.Time

	stop chan struct{}
	done chan struct{}
}

func newLive(title string) *live {
	return &live{id: "anelab_live_" + uniqueID(), title: title, now: time.Now}
}

// event records one optimizer update (called by train.Options.OnStep).
func (l *live) event(e train.Event) {
	l.mu.Lock()
	l.last, l.seen, l.dirty = e, true, true
	if !math.IsNaN(e.Loss) && !math.IsInf(e.Loss, 0) {
		l.pts = append(l.pts, e.Point)
	}
	l.mu.Unlock()
}

// start shows the block and refreshes it until finish. On a terminal there is no block: the
// trainer's own step lines say the same.
func (l *live) start() {
	if !out.Notebook() {
		return
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	out.Update(l.id, `<div style="font-family:monospace">`+esc(l.title)+`: starting…</div>`, l.title+": starting…")
	go func() {
		defer close(l.done)
		t := time.NewTicker(liveTick)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.render()
			}
		}
	}()
}

// finish stops refreshing and clears the block.
func (l *live) finish() {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	if out.Notebook() {
		out.Update(l.id, "", "")
	}
}

// render sends the block's current state if anything changed.
func (l *live) render() {
	l.mu.Lock()
	if !l.dirty || !l.seen {
		l.mu.Unlock()
		return
	}
	l.dirty = false
	e := l.last
	var pts []train.Point
	now := l.now()
	if out.Notebook() && now.Sub(l.charted) >= chartEvery && len(l.pts) > 1 {
		pts = append(pts, l.pts...)
		l.charted = now
	}
	l.mu.Unlock()

	if pts != nil {
		if png, err := lossPNG(l.title, []curveSeries{{Name: "train loss", Points: pts}}, 4.5, 2.4); err == nil {
			l.mu.Lock()
			l.chart = base64.StdEncoding.EncodeToString(png)
			l.mu.Unlock()
		}
	}
	l.mu.Lock()
	chart := l.chart
	l.mu.Unlock()
	h, t := liveHTML(l.title, e, chart)
	out.Update(l.id, h, t)
}

// progress is how far a run is, in [0, 1], from its budget and step limit (the larger), and
// the estimated seconds left (NaN if unknown).
func progress(e train.Event) (frac, left float64) {
	frac, left = math.NaN(), math.NaN()
	if e.Progress > 0 {
		// The trainer's own progress, whatever the budget kind; time left from the pace so far.
		return math.Min(1, e.Progress), e.TimeS / e.Progress * (1 - math.Min(1, e.Progress))
	}
	if e.BudgetS > 0 {
		frac = e.TimeS / e.BudgetS
		left = e.BudgetS - e.TimeS
	}
	if e.MaxSteps > 0 && e.Step > 0 {
		f := float64(e.Step) / float64(e.MaxSteps)
		l := e.TimeS / float64(e.Step) * float64(e.MaxSteps-e.Step)
		if math.IsNaN(frac) || f > frac {
			frac = f
		}
		if math.IsNaN(left) || l < left {
			left = l
		}
	}
	if !math.IsNaN(frac) {
		frac = math.Max(0, math.Min(1, frac))
	}
	if !math.IsNaN(left) {
		left = math.Max(0, left)
	}
	return frac, left
}

// liveHTML renders the block: a status line, a progress bar and the chart (if any).
func liveHTML(title string, e train.Event, chartB64 string) (string, string) {
	frac, left := progress(e)
	steps := fmt.Sprintf("%d", e.Step)
	if e.MaxSteps > 0 {
		steps += fmt.Sprintf("/%d", e.MaxSteps)
	}
	status := fmt.Sprintf("step %s · loss %s · lr %s · %s tok/s · %s elapsed", steps, Num(round4(e.Loss)),
		Num(e.LR), Num(math.Round(e.TokensPerS)), dur(e.TimeS))
	if !math.IsNaN(left) {
		status += " · " + dur(left) + " left"
	}
	h := `<div style="font-family:monospace"><b>` + esc(title) + `</b><br>` + esc(status)
	if !math.IsNaN(frac) {
		h += fmt.Sprintf(`<br><progress value="%.0f" max="1000" style="width:420px"></progress> %.0f%%`, frac*1000, frac*100)
	}
	if chartB64 != "" {
		h += `<br><img src="data:image/png;base64,` + chartB64 + `">`
	}
	h += `</div>`
	return h, title + ": " + status
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// dur formats seconds as "42s", "3m05s" or "1h02m".
func dur(s float64) string {
	if math.IsNaN(s) || s < 0 {
		return "?"
	}
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

var (
	idMu  sync.Mutex
	idSeq int
)

// uniqueID is unique within the process and across cells (it includes the start time).
func uniqueID() string {
	idMu.Lock()
	defer idMu.Unlock()
	idSeq++
	return fmt.Sprintf("%x_%d", time.Now().UnixNano(), idSeq)
}
