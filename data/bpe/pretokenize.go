// Package bpe is a byte-level byte-pair-encoding tokenizer: the 256 byte values are the base
// vocabulary (so every byte string, valid UTF-8 or not, round-trips exactly), merges learnt from a
// corpus add tokens up to a chosen vocabulary size, and optional special tokens (such as a
// beginning-of-story separator) come last. Text is first cut into pre-tokens by a simple,
// regex-free rule (Split); merges never cross a pre-token boundary.
package bpe

import (
	"unicode"
	"unicode/utf8"
)

// character classes of the pre-tokenizer
const (
	clSpace = iota
	clLetter
	clDigit
	clOther
)

func class(r rune) int {
	switch {
	case r == utf8.RuneError:
		return clOther // invalid bytes (and U+FFFD itself) are "other"
	case unicode.IsSpace(r):
		return clSpace
	case unicode.IsLetter(r) || unicode.IsMark(r):
		return clLetter
	case unicode.IsNumber(r):
		return clDigit
	}
	return clOther
}

// decode is utf8.DecodeRune with a fast path for ASCII.
func decode(b []byte) (rune, int) {
	if b[0] < utf8.RuneSelf {
		return rune(b[0]), 1
	}
	return utf8.DecodeRune(b)
}

// run returns the end of the run of class c that starts at i.
func run(b []byte, i, c int) int {
	for i < len(b) {
		r, n := decode(b[i:])
		if class(r) != c {
			break
		}
		i += n
	}
	return i
}

// Split cuts text into pre-tokens and calls emit for each, in order; their concatenation is text.
// The rule, in the spirit of GPT-2's regex but without one:
//   - a run of letters, a run of digits, or a run of other characters (punctuation, symbols, emoji,
//     invalid bytes), each optionally preceded by one space: "Once", " upon", " 42", "!\"";
//   - an apostrophe between letters starts a contraction piece: "don" "'t";
//   - a run of whitespace, minus a final space that goes to the next word: "\n\n", " ".
func Split(text []byte, emit func(piece []byte)) {
	prevLetter := false
	for i := 0; i < len(text); {
		start := i
		r, n := decode(text[i:])
		c := class(r)
		if r == ' ' && i+1 < len(text) {
			r2, _ := decode(text[i+1:])
			if c2 := class(r2); c2 != clSpace {
				i = run(text, i+1, c2)
				emit(text[start:i])
				prevLetter = c2 == clLetter
				continue
			}
		}
		switch {
		case c == clSpace:
			i = run(text, i, clSpace)
			if i < len(text) && i-start > 1 && text[i-1] == ' ' {
				i-- // the last space belongs to the next word
			}
		case r == '\'' && prevLetter && i+1 < len(text) && isLetterAt(text, i+1):
			i = run(text, i+1, clLetter)
			c = clLetter
		default:
			i = run(text, i+n, c)
		}
		emit(text[start:i])
		prevLetter = c == clLetter
	}
}

func isLetterAt(b []byte, i int) bool {
	r, _ := decode(b[i:])
	return class(r) == clLetter
}
