package model

// AsyncBackend is an optional interface of a Backend. Async reports whether the backend's calls
// run on a separate accelerator (the Neural Engine), so that the CPU is mostly idle during them:
// then ForwardBackward overlaps the weight-gradient GEMMs with them (see dwQueue). A backend
// whose calls compute on the same CPU cores (the CPU backend, an emulator) leaves it out or
// returns false: overlapping would only make the two compete for the cores.
//
// An async backend's backward calls must write only the outputs their doc comment lists (their
// inputs, DY and DO in particular, stay untouched): the queued GEMMs read them meanwhile.
type AsyncBackend interface {
	Async() bool
}

// async reports whether the model's backend asks for the asynchronous weight gradients.
func (m *Model) async() bool { return isAsync(m.backend) }

// isAsync reports whether backend b runs the weight gradients on its dW worker.
func isAsync(b Backend) bool {
	a, ok := b.(AsyncBackend)
	return ok && a.Async()
}

// dw kinds: the weight-gradient GEMMs of one part of the backward pass.
const (
	dwClassifier = iota // gE (gE_c) += dlogitsᵀ·xf
	dwFFN               // layer l: dW2 += DYᵀ·Gate, dW1 += DH1ᵀ·X2n, dW3 += DH3ᵀ·X2n
	dwAttn              // layer l: dWo += DOᵀ·A, dWq += DQᵀ·Xn, dWk += DKᵀ·Xn, dWv += DVᵀ·Xn
	dwStop              // ends the worker
)

// weightGrad runs the weight-gradient GEMMs of kind (layer l) on team t, as one loop: in place
// (a synchronous backend that does not fuse them into its own loops, see Model.fuseDW) or on the
// dW worker.
func (m *Model) weightGrad(t *team, kind, l int, s Shape, ec []float32) {
	n, d, c := s.N, s.D, m.classes()
	b := &m.buf
	switch kind {
	case dwClassifier:
		dlogits := b.logits[:n*c]
		if m.cfg.Compact {
			clear(b.gec[:c*d])
			classifierBackwardWeight(t, b.gec, dlogits, b.xf, n, c, d)
			scatterAddRows(m.headParam().G, b.gec, m.active, d)
		} else {
			classifierBackwardWeight(t, m.headParam().G, dlogits, b.xf, n, c, d)
		}
	default:
		var buf [maxGemms]gemmSpec
		t.gemms(m.layerWeightGrads(&buf, kind, l, s)...)
	}
}

// layerWeightGrads is the weight-gradient products of layer l's FFN (dwFFN) or attention
// (dwAttn), in buf:
//
//	FFN:       dW2 += DYᵀ·Gate, dW1 += DH1ᵀ·X2n, dW3 += DH3ᵀ·X2n
//	attention: dWo += DOᵀ·A, dWq += DQᵀ·Xn, dWk += DKᵀ·Xn, dWv += DVᵀ·Xn
func (m *Model) layerWeightGrads(buf *[maxGemms]gemmSpec, kind, l int, s Shape) []gemmSpec {
	n, d, f, kvd := s.N, s.D, s.F, s.KVD()
	p, a := &m.Layers[l], &m.buf.acts[l]
	if kind == dwAttn {
		*buf = [maxGemms]gemmSpec{linearWeight(p.Wo.G, a.DO, a.A, n, d, d), linearWeight(p.Wq.G, a.DQ, a.Xn, n, d, d),
			linearWeight(p.Wk.G, a.DK, a.Xn, n, d, kvd), linearWeight(p.Wv.G, a.DV, a.Xn, n, d, kvd)}
		return buf[:4]
	}
	*buf = [maxGemms]gemmSpec{linearWeight(p.W2.G, a.DY, a.Gate, n, f, d), linearWeight(p.W1.G, a.DH1, a.X2n, n, d, f)}
	if p.W3 == nil {
		return buf[:2]
	}
	buf[2] = linearWeight(p.W3.G, a.DH3, a.X2n, n, d, f)
	return buf[:3]
}

// dwQueue is the asynchronous weight-gradient pipeline of an AsyncBackend's step (seed-system
// §3.6): one worker goroutine, started by each backward pass, runs the weight-gradient GEMMs of
// the classifier and of each layer (FFN, then attention) in the order the backward pass queues
// them, which is the synchronous order, on its own team of as many goroutines as the step's (so
// every GEMM is split the same way and gives the same bits). Meanwhile the step's goroutine goes
// on with the backend's next calls (FFNBackward, AttnBackward of the layers below): the CPU runs
// the dW GEMMs while the accelerator evaluates the dx kernels.
//
// Why it is safe:
//   - Each parameter gradient gets all its accumulations from one goroutine in the synchronous
//     order: Wq…W3 and the classifier's part of gE only on the worker, once each; the norm gains
//     only on the step's goroutine; the embedding's scatter-add (embedBackward) only after the
//     queue is drained. The sums are therefore bit-identical to the synchronous path.
//   - The worker reads layer l's own saved activations (Xn, A, X2n, Gate; xf and the dlogits for
//     the classifier), which nothing writes until the next forward pass, and the d-quantities DY,
//     DH1, DH3, DO, DQ, DK, DV, which are scratch shared between layers. With an async backend the
//     shared scratch is double-buffered (buffers.ensure: layer l uses set l mod 2), so layer l−1's
//     calls write the other set; before layer l−2 writes set l mod 2 again (its DY, written by
//     layer l−1's normBackward), the step waits for layer l's jobs. Within a layer the FFN job reads DY, DH1, DH3,
//     which AttnBackward does not write (AsyncBackend's contract).
//   - The backward pass drains the queue before returning, on errors too: when ForwardBackward
//     returns, every gradient is complete and nothing reads the buffers.
//
// Handing a job over on jobs and its completion back on done orders the memory accesses (and
// lets the race detector see it). With a synchronous backend none of this runs.
type dwQueue struct {
	m    *Model
	s    Shape
	ec   []float32
	t    *team         // the worker's loop bodies
	jobs chan [2]int   // {kind, layer}
	done chan struct{} // one token per finished job
	sent int           // jobs queued by this backward pass (dwStop included)
	fin  int           // their completions received
	on   bool          // a worker is running
}

// start launches the worker for a backward pass of shape s with classifier ec.
func (q *dwQueue) start(m *Model, s Shape, ec []float32) {
	if size := 2*len(m.Layers) + 2; cap(q.jobs) < size {
		q.jobs, q.done = make(chan [2]int, size), make(chan struct{}, size)
	}
	q.t = teamFor(q.t, m.team.w, m.team.dim, m.team.pool)
	q.m, q.s, q.ec, q.sent, q.fin, q.on = m, s, ec, 0, 0, true
	go q.work()
}

func (q *dwQueue) work() {
	for j := range q.jobs {
		if j[0] != dwStop {
			q.m.weightGrad(q.t, j[0], j[1], q.s, q.ec)
		}
		q.done <- struct{}{}
		if j[0] == dwStop {
			return
		}
	}
}

// submit queues the GEMMs of kind for layer l (the channel has room for a whole step's jobs).
func (q *dwQueue) submit(kind, l int) {
	q.jobs <- [2]int{kind, l}
	q.sent++
}

// wait blocks until the first k queued jobs are done, timing the wait as weight-gradient time.
func (q *dwQueue) wait(k int) {
	if q.fin >= k {
		return
	}
	tw := q.m.clock()
	for q.fin < k {
		<-q.done
		q.fin++
	}
	q.m.wgradSince(tw)
}

// finish drains the queue and ends the worker (nothing when no worker runs).
func (q *dwQueue) finish() {
	if !q.on {
		return
	}
	q.submit(dwStop, 0)
	q.wait(q.sent)
	q.on, q.m, q.ec = false, nil, nil
}
