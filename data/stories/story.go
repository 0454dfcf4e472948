// Package stories generates short synthetic children's stories in the spirit of TinyStories:
// named characters with consistent pronouns (he, she or they), places, toys, animals, a small
// problem and how it is solved, dialogue in quotes, and a happy ending or a moral. It is the
// offline default corpus of anelab: deterministic (Story(seed) is always the same text), free of
// any download, and varied enough (thousands of distinct words, many plots and phrasings) that a
// small model has something to learn. The text is synthetic, not written by people.
package stories

import (
	"strings"
)

// Version changes whenever Story's output changes, so prepared data can tell it is stale.
const Version = 1

// ValSeedBase is the first validation seed. Training stories use seeds [0, N) and validation
// stories seeds [ValSeedBase, ValSeedBase+M), so the two never share a seed.
const ValSeedBase = uint64(1) << 40

// Story returns the story for seed.
func Story(seed uint64) string {
	s, _ := generate(seed)
	return s
}

// Pronouns are a character's pronoun set. Plural marks singular "they", which takes plural verbs
// ("they were").
type Pronouns struct {
	Subj, Obj, Poss, Refl string
	Plural                bool
}

var (
	She  = Pronouns{"she", "her", "her", "herself", false}
	He   = Pronouns{"he", "him", "his", "himself", false}
	They = Pronouns{"they", "them", "their", "themselves", true}
)

// Character is one member of a story's cast.
type Character struct {
	Name     string // "Lily", "Spot", "Mom", or a description ("the little bird")
	Kind     string // "girl", "boy", "kid", "dog", "mom", …
	Pronouns Pronouns
	Named    bool
	animal   *animal
}

// Cast returns the characters of the story for seed (who can be referred to by a pronoun).
func Cast(seed uint64) []Character {
	_, c := generate(seed)
	return c
}

// rng is splitmix64: tiny, fast, and good enough to pick words.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int          { return int(r.next() % uint64(n)) }
func (r *rng) chance(p float64) bool   { return float64(r.next()>>11)/(1<<53) < p }
func (r *rng) pick(xs []string) string { return xs[r.intn(len(xs))] }
func (r *rng) pickN(xs []string, n int) []string {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	out := make([]string, 0, n)
	for i := 0; i < n && i < len(xs); i++ {
		j := i + r.intn(len(xs)-i)
		idx[i], idx[j] = idx[j], idx[i]
		out = append(out, xs[idx[i]])
	}
	return out
}

// gen builds one story: a cast addressed by key ("A" is the hero), string variables, and the
// paragraphs written so far.
type gen struct {
	r     rng
	cast  map[string]*Character
	order []string
	vars  map[string]string
	used  map[string]bool // names already taken
	paras []string
	cur   []string
	last  bool // in the closing paragraph: no scenery
}

func generate(seed uint64) (string, []Character) {
	g := &gen{r: rng{seed*0x2545F4914F6CDD1D + 0x1234567}, cast: map[string]*Character{},
		vars: map[string]string{}, used: map[string]bool{}}
	g.r.next()
	g.story()
	var cast []Character
	for _, k := range g.order {
		cast = append(cast, *g.cast[k])
	}
	return strings.Join(g.paras, "\n\n"), cast
}

// ---- characters ----

func (g *gen) add(key string, c *Character) *Character {
	if _, ok := g.cast[key]; !ok {
		g.order = append(g.order, key)
	}
	g.cast[key] = c
	if c.Named {
		g.used[c.Name] = true
	}
	return c
}

func (g *gen) pronouns() Pronouns {
	switch x := g.r.intn(20); {
	case x < 9:
		return She
	case x < 18:
		return He
	}
	return They
}

func (g *gen) freshName(list []string) string {
	for {
		if n := g.r.pick(list); !g.used[n] {
			return n
		}
	}
}

// child adds a named child.
func (g *gen) child(key string) *Character {
	p := g.pronouns()
	c := &Character{Pronouns: p, Named: true}
	switch p {
	case She:
		c.Name, c.Kind = g.freshName(girlNames), "girl"
	case He:
		c.Name, c.Kind = g.freshName(boyNames), "boy"
	default:
		c.Name, c.Kind = g.freshName(theyNames), g.r.pick([]string{"kid", "child"})
	}
	return g.add(key, c)
}

// creature adds an animal; named ones get a pet name, others are "the <adj> <animal>".
func (g *gen) creature(key string, named bool) *Character {
	a := &animals[g.r.intn(len(animals))]
	c := &Character{Kind: a.name, Pronouns: g.pronouns(), Named: named, animal: a}
	if named {
		c.Name = g.freshName(petNames)
	} else {
		c.Name = "the " + g.r.pick([]string{"little", "small", "old", "young", "tiny", "fluffy", "shy", "friendly", "wise", "sleepy"}) + " " + a.name
	}
	return g.add(key, c)
}

// someone adds a child (mostly) or a named animal.
func (g *gen) someone(key string) *Character {
	if g.r.chance(0.7) {
		return g.child(key)
	}
	return g.creature(key, true)
}

// parent adds a grown-up who looks after the hero.
func (g *gen) parent(key string) *Character {
	opts := []struct {
		name string
		p    Pronouns
	}{{"Mom", She}, {"Dad", He}, {"Mom", She}, {"Dad", He}, {"Grandma", She}, {"Grandpa", He}}
	o := opts[g.r.intn(len(opts))]
	return g.add(key, &Character{Name: o.name, Kind: strings.ToLower(o.name), Pronouns: o.p, Named: true})
}

// ---- text ----

// field returns a character's word for a template field.
func (c *Character) field(f string) string {
	p := c.Pronouns
	sg := func(s, pl string) string {
		if p.Plural {
			return pl
		}
		return s
	}
	switch f {
	case "s":
		return p.Subj
	case "o":
		return p.Obj
	case "p":
		return p.Poss
	case "r":
		return p.Refl
	case "was":
		return sg("was", "were")
	case "wasnt":
		return sg("wasn't", "weren't")
	case "is":
		return sg("is", "are")
	case "has":
		return sg("has", "have")
	case "does":
		return sg("does", "do")
	case "kind":
		return c.Kind
	case "an":
		return an(c.Kind)
	case "a": // first mention
		if !c.Named {
			return an(strings.TrimPrefix(c.Name, "the "))
		}
		return article(c.Kind) + " " + c.Kind + " named " + c.Name
	case "sound":
		if c.animal != nil {
			return c.animal.sound
		}
		return "laughed"
	case "move":
		if c.animal != nil {
			return c.animal.move
		}
		return "ran"
	}
	panic("stories: unknown field " + f)
}

// expand fills a template: {A} is character A's name, {A.s}/{A.o}/{A.p}/{A.r} its pronouns
// (capitalised as {A.S} …), {A.was} etc. agree with the pronoun, {x} is variable x ({X}
// capitalised), and {one|two|three} picks one alternative; alternatives may hold templates.
func (g *gen) expand(t string) string {
	if !strings.Contains(t, "{") {
		return t
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		j := closing(t, i)
		b.WriteString(t[:i])
		b.WriteString(g.lookup(t[i+1 : j]))
		t = t[j+1:]
	}
}

// closing returns the index of the brace that closes the one at i.
func closing(t string, i int) int {
	depth := 0
	for j := i; j < len(t); j++ {
		switch t[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	panic("stories: unclosed brace in " + t)
}

// alternatives splits a choice on the bars that are not inside nested braces.
func alternatives(key string) []string {
	var alts []string
	depth, start := 0, 0
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '|':
			if depth == 0 {
				alts = append(alts, key[start:i])
				start = i + 1
			}
		}
	}
	return append(alts, key[start:])
}

func (g *gen) lookup(key string) string {
	if strings.ContainsAny(key, "|{") {
		alts := alternatives(key)
		return g.expand(alts[g.r.intn(len(alts))])
	}
	who, f, hasField := strings.Cut(key, ".")
	if c, ok := g.cast[who]; ok {
		if !hasField {
			return c.Name
		}
		if f[0] >= 'A' && f[0] <= 'Z' {
			return capitalize(c.field(strings.ToLower(f[:1]) + f[1:]))
		}
		return c.field(f)
	}
	if key == "an animal" {
		return an(g.vars["anim"])
	}
	if v, ok := g.vars[strings.ToLower(key[:1])+key[1:]]; ok {
		if key[0] >= 'A' && key[0] <= 'Z' {
			return capitalize(v)
		}
		return v
	}
	panic("stories: unknown template key " + key)
}

func capitalize(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == ' ' {
			continue
		}
		if c >= 'a' && c <= 'z' {
			return s[:i] + string(c-32) + s[i+1:]
		}
		return s
	}
	return s
}

// say adds one of the alternatives (expanded, first letter capitalised) to the paragraph.
func (g *gen) say(alts ...string) {
	g.cur = append(g.cur, capitalize(g.expand(alts[g.r.intn(len(alts))])))
}

// maybe says it with probability p.
func (g *gen) maybe(p float64, alts ...string) {
	if g.r.chance(p) {
		g.say(alts...)
	}
}

// para ends the paragraph, now and then with a detail about the world around.
func (g *gen) para() {
	if len(g.cur) > 0 && !g.last && g.r.chance(0.35) {
		g.detail()
	}
	if len(g.cur) > 0 {
		g.paras = append(g.paras, strings.Join(g.cur, " "))
		g.cur = g.cur[:0]
	}
}

// detail adds a sentence of scenery: sky, weather, smells, sounds, neighbors, plants and animals.
func (g *gen) detail() {
	a := animals[g.r.intn(len(animals))]
	v := g.vars
	v["anim"], v["anims"], v["animsound"], v["animmove"] = a.name, a.plural, a.sound, a.move
	v["flower"], v["tree"], v["neighbor"] = g.r.pick(flowers), g.r.pick(trees), g.r.pick(neighbors)
	v["smell"], v["sound"] = g.r.pick(smells), g.r.pick(sounds)
	v["acolorflower"] = an(g.r.pick(colors) + " " + v["flower"])
	g.say(
		"Somewhere nearby, {an animal} {animsound}.",
		"The sky was {clear and blue|full of fluffy clouds|pink and orange|gray and heavy|bright and wide}.",
		"A {gentle|cool|warm|soft} breeze {rustled the leaves|made the {flower}s dance|blew through the {tree}s}.",
		"The air smelled of {smell}.",
		"{Sound} {all around|in the distance|nearby|somewhere far away}.",
		"Far away, two {anims} {animmove} by.",
		"{Acolorflower} was growing by the path.",
		"The sun {sparkled on the water|warmed everything|was high in the sky|hid behind a cloud|was going down}.",
		"It was {quiet|peaceful|busy|noisy} {inplace} that day.",
		"{Neighbor} waved from across the street.",
		"An old {tree} stood {nearby|by the gate|on the hill}, and {a few|some} {anims} rested in its shade.",
		"{Neighbor} was {sweeping the steps|watering the garden|reading a newspaper|painting a fence} nearby.",
	)
}

// quote adds a line of dialogue spoken by who, in one of several shapes. line carries its own
// final punctuation (. ! ?).
func (g *gen) quote(who string, lines ...string) {
	line := capitalize(g.expand(lines[g.r.intn(len(lines))]))
	end := line[len(line)-1]
	body := line[:len(line)-1]
	verb := g.r.pick(saidWords)
	switch end {
	case '?':
		verb = g.r.pick([]string{"asked", "asked", "wondered", "said"})
	case '!':
		verb = g.r.pick([]string{"cried", "shouted", "said", "called", "exclaimed"})
	default:
		if verb == "asked" || verb == "shouted" || verb == "cried" {
			verb = "said"
		}
	}
	c := g.cast[who]
	name := c.Name
	pron := c.Pronouns.Subj
	tagged := line
	if end == '.' {
		tagged = body + ","
	}
	switch g.r.intn(5) {
	case 0, 1:
		g.cur = append(g.cur, "\""+tagged+"\" "+name+" "+verb+".")
	case 2:
		g.cur = append(g.cur, "\""+tagged+"\" "+pron+" "+verb+".")
	case 3:
		if c.Named {
			g.cur = append(g.cur, "\""+tagged+"\" "+verb+" "+name+".")
		} else {
			g.cur = append(g.cur, capitalize(name)+" "+verb+", \""+line+"\"")
		}
	default:
		g.cur = append(g.cur, capitalize(name)+" "+verb+", \""+line+"\"")
	}
}

// article is "a" or "an" for the word that follows.
func article(w string) string {
	w = strings.ToLower(w)
	for _, p := range []string{"uni", "use", "one", "eu"} {
		if strings.HasPrefix(w, p) {
			return "a"
		}
	}
	if strings.HasPrefix(w, "hour") || strings.HasPrefix(w, "honest") {
		return "an"
	}
	if w != "" && strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}

// an prefixes the right article: an("apple") = "an apple".
func an(w string) string { return article(w) + " " + w }

// gerund turns a verb phrase's first word into its -ing form: "ride a bike" → "riding a bike".
func gerund(phrase string) string {
	v, rest, _ := strings.Cut(phrase, " ")
	switch {
	case v == "be" || v == "see" || v == "free":
		v += "ing"
	case strings.HasSuffix(v, "ie"):
		v = v[:len(v)-2] + "ying"
	case strings.HasSuffix(v, "e") && !strings.HasSuffix(v, "ee"):
		v = v[:len(v)-1] + "ing"
	case doubles[v]:
		v += v[len(v)-1:] + "ing"
	default:
		v += "ing"
	}
	if rest == "" {
		return v
	}
	return v + " " + rest
}

var doubles = map[string]bool{"run": true, "swim": true, "dig": true, "hop": true, "skip": true,
	"jog": true, "clap": true, "hum": true, "hug": true, "pat": true, "tap": true, "nod": true, "stop": true, "sit": true, "get": true, "put": true, "shop": true,
	"chat": true, "nap": true, "plan": true, "drum": true, "stir": true}
