package stories

import (
	"regexp"
	"strings"
	"testing"
)

func TestDeterministic(t *testing.T) {
	seen := map[string]bool{}
	for s := uint64(0); s < 300; s++ {
		a, b := Story(s), Story(s)
		if a != b {
			t.Fatalf("seed %d: two calls differ", s)
		}
		seen[a] = true
	}
	if len(seen) < 299 {
		t.Errorf("only %d distinct stories in 300 seeds", len(seen))
	}
}

var wordRE = regexp.MustCompile(`[A-Za-z][A-Za-z'-]*`)

func words(s string) []string {
	w := wordRE.FindAllString(strings.ToLower(s), -1)
	for i := range w {
		w[i] = strings.TrimSuffix(strings.TrimSuffix(w[i], "'"), "'s")
	}
	return w
}

func TestPronounConsistency(t *testing.T) {
	sets := map[Pronouns][]string{
		She: {"she", "her", "hers", "herself"},
		He:  {"he", "him", "his", "himself"},
	}
	wrong := regexp.MustCompile(`(?i)\b(they (was|is|has|wasn't)|(he|she) (were|are|have|weren't))\b`)
	for s := uint64(0); s < 1500; s++ {
		text, cast := generate(s)
		used := map[string]bool{}
		for _, w := range words(text) {
			used[w] = true
		}
		has := map[Pronouns]bool{}
		for _, c := range cast {
			has[c.Pronouns] = true
		}
		for p, ws := range sets {
			if has[p] {
				continue
			}
			for _, w := range ws {
				if used[w] {
					t.Errorf("seed %d: %q appears but no character is %s/%s (cast %v):\n%s", s, w, p.Subj, p.Obj, cast, text)
				}
			}
		}
		if used["themselves"] && !has[They] {
			t.Errorf("seed %d: \"themselves\" but no they-character", s)
		}
		if m := wrong.FindString(text); m != "" {
			t.Errorf("seed %d: verb does not agree: %q\n%s", s, m, text)
		}
		if t.Failed() {
			return
		}
	}
}

func TestDistinctWords(t *testing.T) {
	distinct := map[string]bool{}
	for s := uint64(0); s < 2000; s++ {
		for _, w := range words(Story(s)) {
			distinct[w] = true
		}
	}
	if len(distinct) <= 1000 {
		t.Errorf("%d distinct words in 2000 stories, want > 1000", len(distinct))
	}
	t.Logf("%d distinct words in 2000 stories", len(distinct))
}

func TestTrainValDisjoint(t *testing.T) {
	train := map[string]bool{}
	for s := uint64(0); s < 3000; s++ {
		train[Story(s)] = true
	}
	for s := ValSeedBase; s < ValSeedBase+1000; s++ {
		if train[Story(s)] {
			t.Fatalf("validation seed %d gives the same story as a training seed", s)
		}
	}
}

func TestWellFormed(t *testing.T) {
	badArticle := regexp.MustCompile(`\b[Aa] [aeiAEI]\w*|\b[Aa] o[^n]\w*|\b[Aa]n [^aeiouhAEIOUH\s]\w*`)
	for s := uint64(0); s < 1500; s++ {
		text := Story(s)
		for _, bad := range []string{"{", "}", "  ", " ,", " .", "..", "\n\n\n"} {
			if strings.Contains(text, bad) {
				t.Fatalf("seed %d contains %q:\n%s", s, bad, text)
			}
		}
		if m := badArticle.FindString(text); m != "" {
			t.Fatalf("seed %d: wrong article in %q:\n%s", s, m, text)
		}
		for _, p := range strings.Split(text, "\n\n") {
			first := strings.TrimLeft(p, "\"")
			if first == "" || first[0] < 'A' || first[0] > 'Z' {
				t.Fatalf("seed %d: paragraph does not start with a capital: %q", s, p)
			}
		}
		if strings.Count(text, "\"")%2 != 0 {
			t.Fatalf("seed %d: unbalanced quotes:\n%s", s, text)
		}
	}
}

func TestGrammarHelpers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ride a bike", "riding a bike"}, {"run fast", "running fast"}, {"swim", "swimming"},
		{"hum little tunes", "humming little tunes"}, {"tie shoelaces", "tying shoelaces"},
		{"see", "seeing"}, {"read books", "reading books"}, {"dance", "dancing"}, {"fly a kite", "flying a kite"},
	} {
		if got := gerund(tc.in); got != tc.want {
			t.Errorf("gerund(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"apple", "an apple"}, {"ball", "a ball"}, {"unicorn", "a unicorn"}, {"old owl", "an old owl"},
		{"umbrella", "an umbrella"}, {"hour", "an hour"}, {"eager kid", "an eager kid"},
	} {
		if got := an(tc.in); got != tc.want {
			t.Errorf("an(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func BenchmarkStory(b *testing.B) {
	n := 0
	for i := 0; i < b.N; i++ {
		n += len(Story(uint64(i)))
	}
	b.SetBytes(int64(n / b.N))
}
