package bpe

import (
	"container/heap"
	"fmt"
	"sort"
)

// Trainer counts pre-tokens over a corpus, then learns merges (Train).
type Trainer struct {
	counts map[string]int64
}

// NewTrainer returns an empty Trainer.
func NewTrainer() *Trainer { return &Trainer{counts: make(map[string]int64)} }

// Add counts the pre-tokens of one document.
func (tr *Trainer) Add(text []byte) {
	Split(text, func(p []byte) { tr.counts[string(p)]++ })
}

// Train learns byte-pair merges from texts until the vocabulary (256 bytes + merges + special
// tokens) reaches vocabSize. See Trainer.Train.
func Train(texts []string, vocabSize int, special []string) (*Tokenizer, error) {
	tr := NewTrainer()
	for _, s := range texts {
		tr.Add([]byte(s))
	}
	return tr.Train(vocabSize, special)
}

// Train learns merges from the counted pre-tokens. Each step merges the most frequent adjacent
// pair of tokens (summed over pre-tokens, weighted by how often each pre-token occurs); ties go to
// the pair with the smaller (left id, right id). It stops at vocabSize, or earlier when no pair
// occurs at least twice (then the vocabulary is smaller than asked: check VocabSize()).
//
// Pair counts are kept incrementally: a merge only revisits the pre-tokens that contain the
// merged pair, and a max-heap with lazy deletion finds the next best pair.
func (tr *Trainer) Train(vocabSize int, special []string) (*Tokenizer, error) {
	if vocabSize < 256+len(special) {
		return nil, fmt.Errorf("bpe: vocab size %d is too small: it must hold the 256 byte tokens and %d special tokens (≥ %d)",
			vocabSize, len(special), 256+len(special))
	}
	if vocabSize > 1<<16 {
		return nil, fmt.Errorf("bpe: vocab size %d is too large: token shards hold uint16 ids (≤ 65536)", vocabSize)
	}
	nMerges := vocabSize - 256 - len(special)

	// words: the distinct pre-tokens as symbol sequences, in sorted order for determinism
	keys := make([]string, 0, len(tr.counts))
	for k := range tr.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	words := make([][]int32, len(keys))
	freq := make([]int64, len(keys))
	pairs := make(map[uint64]int64)
	where := make(map[uint64][]int32)
	for w, k := range keys {
		syms := make([]int32, len(k))
		for i := 0; i < len(k); i++ {
			syms[i] = int32(k[i])
		}
		words[w], freq[w] = syms, tr.counts[k]
		for i := 0; i+1 < len(syms); i++ {
			p := pairKey(int(syms[i]), int(syms[i+1]))
			pairs[p] += freq[w]
			if l := where[p]; len(l) == 0 || l[len(l)-1] != int32(w) {
				where[p] = append(l, int32(w))
			}
		}
	}
	h := make(pairHeap, 0, len(pairs))
	for p, c := range pairs {
		h = append(h, pairCount{p, c})
	}
	heap.Init(&h)

	merges := make([][2]int, 0, nMerges)
	visited := make([]int32, len(words)) // merge index+1 that last rewrote word w
	changed := make(map[uint64]struct{})
	for len(merges) < nMerges && h.Len() > 0 {
		top := heap.Pop(&h).(pairCount)
		if pairs[top.pair] != top.count {
			continue // stale entry; a fresh one was pushed when the count changed
		}
		if top.count < 2 {
			break
		}
		a, b := int32(top.pair>>32), int32(uint32(top.pair))
		z := int32(256 + len(merges))
		merges = append(merges, [2]int{int(a), int(b)})
		mark := int32(len(merges))
		clear(changed)
		for _, w := range where[top.pair] {
			if visited[w] == mark {
				continue
			}
			visited[w] = mark
			syms, f := words[w], freq[w]
			if !contains(syms, a, b) {
				continue
			}
			for i := 0; i+1 < len(syms); i++ {
				p := pairKey(int(syms[i]), int(syms[i+1]))
				pairs[p] -= f
				changed[p] = struct{}{}
			}
			syms = merge32(syms, a, b, z)
			words[w] = syms
			for i := 0; i+1 < len(syms); i++ {
				p := pairKey(int(syms[i]), int(syms[i+1]))
				pairs[p] += f
				changed[p] = struct{}{}
				if syms[i] == z || syms[i+1] == z {
					if l := where[p]; len(l) == 0 || l[len(l)-1] != w {
						where[p] = append(l, w)
					}
				}
			}
		}
		delete(where, top.pair)
		delete(pairs, top.pair)
		for p := range changed {
			if c := pairs[p]; c > 0 {
				heap.Push(&h, pairCount{p, c})
			} else {
				delete(pairs, p)
			}
		}
	}
	return New(merges, special)
}

func contains(s []int32, a, b int32) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == a && s[i+1] == b {
			return true
		}
	}
	return false
}

// merge32 is mergeAll for int32 symbols.
func merge32(s []int32, a, b, z int32) []int32 {
	w := 0
	for r := 0; r < len(s); {
		if r+1 < len(s) && s[r] == a && s[r+1] == b {
			s[w] = z
			r += 2
		} else {
			s[w] = s[r]
			r++
		}
		w++
	}
	return s[:w]
}

type pairCount struct {
	pair  uint64
	count int64
}

// pairHeap is a max-heap on count, ties to the smaller pair key (smaller left id, then right id).
type pairHeap []pairCount

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].pair < h[j].pair
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairCount)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
