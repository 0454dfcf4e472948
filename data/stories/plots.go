package stories

// story picks a hero, opens, runs one plot and closes.
func (g *gen) story() {
	if g.r.chance(0.75) {
		g.child("A")
	} else {
		g.creature("A", true)
	}
	g.setCommon()
	g.intro()
	plots := []func(){g.lostThing, g.brokenThing, g.sharing, g.rescue, g.fear, g.rainyDay,
		g.lostInWoods, g.newSkill, g.mess, g.race, g.gift, g.hungryAnimal, g.seed, g.quarrel,
		g.newFriend}
	plots[g.r.intn(len(plots))]()
	g.last = true
	g.para()
}

// setCommon fills the variables every plot may use.
func (g *gen) setCommon() {
	v := g.vars
	adj := g.r.pick(heroAdjs)
	v["adj"], v["anadj"] = adj, an(adj)
	t := g.r.pick(things)
	ta := g.r.pick(thingAdjs)
	v["objn"], v["obj"], v["aobj"] = t, ta+" "+t, an(ta+" "+t)
	p := places[g.r.intn(len(places))]
	v["place"], v["inplace"] = p.name, p.prep+" the "+p.name
	f := g.r.pick(foods)
	v["food"], v["afood"] = f, an(f)
	act := g.r.pickN(activities, 2)
	v["act"], v["actg"], v["act2"], v["act2g"] = act[0], gerund(act[0]), act[1], gerund(act[1])
	sp := g.r.pickN(spots, 3)
	v["spot1"], v["spot2"], v["spot3"] = sp[0], sp[1], sp[2]
	v["color"] = g.r.pick(colors)
	v["weather"], v["daytime"], v["season"] = g.r.pick(weathers), g.r.pick(dayTimes), g.r.pick(seasons)
	v["happy"], v["sad"] = g.r.pick(happyWords), g.r.pick(sadWords)
	v["tool"] = g.r.pick(tools)
	v["when"] = g.expand("{One {weather} {daytime}|One day|Early one morning|On a {weather} {season} day|One {season} {daytime}|The next {daytime}|One {weather} day}")
	if g.cast["A"].animal != nil {
		v["home"] = g.r.pick([]string{"in a hole under an old oak tree", "in a cozy nest", "in a burrow near the river",
			"deep in the green forest", "on a sunny farm", "at the edge of a quiet meadow", "in a little den by the hill",
			"near a sparkling pond", "in the big zoo", "in a hollow log"})
	} else {
		v["home"] = g.r.pick([]string{"in a little house by the sea", "in a small village", "in a cozy house with a red door",
			"in a big city", "on a farm", "in a tall building with many windows", "near a deep green forest",
			"in a yellow house at the end of the street", "in a busy town", "next to a big park", "in a cottage on a hill"})
	}
}

func (g *gen) intro() {
	g.say(
		"Once upon a time, there was {anadj} {A.kind} named {A}.",
		"Once upon a time, {home}, there lived {anadj} {A.kind} called {A}.",
		"There once was {anadj} {A.kind} named {A} who lived {home}.",
		"{A} was {anadj} {A.kind} who lived {home}.",
		"{A} was {anadj} little {A.kind}.",
		"Once there was {A.an} called {A}. {A.S} {A.was} very {adj}.",
		"This is a story about {anadj} {A.kind} named {A}.",
		"Not long ago, {home}, lived {anadj} {A.kind}. {A.P} name was {A}.",
	)
	if g.cast["A"].animal == nil {
		g.maybe(0.3, "{A.S} {A.was} {four|five|six|seven|three and a half} years old.")
	}
	g.maybe(0.7,
		"{A.S} loved to {act}.",
		"{A.P} favorite thing to do was {actg}.",
		"More than anything, {A.s} loved {actg}.",
		"Every day, {A.s} liked to {act} and {act2}.",
		"{A.S} liked {actg}, but {A.s} liked {act2g} even more.",
		"{A.S} {A.was} very good at {actg}.",
	)
}

// meet introduces friend key, unless it is a grown-up of the family (who needs no introduction).
func (g *gen) meet(key string) {
	if c := g.cast[key]; c.Named && c.animal == nil && c.Kind != "girl" && c.Kind != "boy" && c.Kind != "kid" && c.Kind != "child" {
		return
	}
	k := "{" + key
	g.say("{A.P} friend "+k+"} was there too.", "Luckily, {A.p} {best friend|good friend} "+k+"} was nearby.",
		k+".a}, who was {A.p} friend, came over.")
}

// helper adds B: a friend, a pet or a grown-up, and introduces them.
func (g *gen) helper() {
	switch g.r.intn(3) {
	case 0:
		g.parent("B")
		g.say("Just then, {A.p} {B.kind} came {by|over|outside}.", "{B} heard {A} and came to see what was wrong.",
			"Soon {A.p} {B.kind} found {A.o}.")
	case 1:
		g.someone("B")
		g.say("Just then, {B.a} came {by|along|over}.", "Soon, {A.p} friend {B} came by.",
			"{A.P} best friend, {B}, saw {A.o} and came over.")
	default:
		g.creature("B", false)
		g.say("Just then, {B.a} {B.move} by.", "A moment later, {B.a} came {along|close|over}.")
	}
}

func (g *gen) lostThing() {
	g.say("{A.S} had {aobj} that {A.s} loved very much.", "{A.P} favorite toy was {aobj}.",
		"{A.S} had {aobj}. It was {A.p} favorite thing in the whole world.",
		"{A.S} had {aobj}, and {A.s} took it everywhere.")
	g.para()
	g.say("{When}, {A} took {A.p} {objn} to the {place}.", "{When}, {A} went to play {inplace}. {A.S} brought {A.p} {objn} along.",
		"{When}, {A} and {A.p} {objn} went to the {place}.")
	g.maybe(0.6, "{A.S} played with it {all morning|for a long time|until the sun was low|all afternoon}.",
		"{A.S} had so much fun {actg}.", "The {place} was full of {children|birds|flowers|people|butterflies}.")
	g.say("But when it was time to go home, the {objn} was gone!",
		"Then {A.s} put the {objn} down to {act2}. When {A.s} turned around, it was not there anymore!",
		"Suddenly, {A} could not find the {objn} anywhere.")
	g.quote("A", "Where is my {objn}?", "Oh no, my {objn} is gone!", "Has anyone seen my {objn}?")
	g.say("{A.S} looked {spot1}. {A.S} looked {spot2}. But the {objn} was not there.",
		"{A.S} searched and searched, but {A.s} could not find it.",
		"{A.S} looked high and low, but the {objn} was nowhere to be seen.")
	g.say("{A} felt very {sad} and began to cry.", "Big tears rolled down {A.p} cheeks.",
		"{A} sat down on the ground. {A.S} {A.was} very {sad}.")
	g.para()
	g.helper()
	g.quote("B", "Why are you {sad|crying}, {A}?", "What is wrong?", "Are you okay?")
	g.quote("A", "I lost my {objn}. I can't find it anywhere.", "My {objn} is lost!", "I can't find my {obj}.")
	g.quote("B", "Don't worry. I will help you look.", "Let's find it together!", "I am good at finding things. Come with me!")
	g.maybe(0.5, "{B.S} {looked closely at the ground|thought very hard|looked around carefully}.",
		"{A} wiped {A.p} tears and {smiled a little|nodded}.")
	g.say("Then {B} saw something {color} {spot3}.", "After a while, {B} pointed at something {spot3}.",
		"They looked everywhere. At last, {A} saw something {spot3}.")
	g.say("It was the {objn}!", "It was {A.p} {objn}!", "There it was, the {obj}!")
	g.para()
	g.say("{A} was so {happy}. {A.S} hugged the {objn} {tight|close}.", "{A} {jumped up and down|clapped {A.p} hands|laughed} with joy.")
	g.quote("A", "Thank you, {B}! You are a {good|true|great} friend.", "Thank you so much for helping me!")
	g.maybe(0.6, "{B} smiled. \"That is what friends are for.\"", "{B} {smiled|grinned} from ear to ear.")
	g.para()
	g.say("From that day on, {A} always kept {A.p} {objn} {close|safe}.",
		"{A} learned that it is good to have friends who help.",
		"After that, {A} and {B} played together every day.",
		"That night, {A} went to sleep with the {objn} right next to {A.o}.")
}

func (g *gen) brokenThing() {
	g.say("{A.S} had {aobj}. {A.S} played with it every day.", "{A.P} {grandpa|grandma|aunt|uncle} had given {A.o} {aobj} for {A.p} birthday.",
		"{A.S} loved {A.p} {obj} more than any other toy.")
	g.para()
	g.say("{When}, {A} was playing with the {objn} {inplace}.", "{When}, {A} took the {objn} outside to play.")
	g.say("{A.S} threw it up high, and it fell down with a crash.", "Oops! The {objn} slipped from {A.p} hands and broke.",
		"{A.S} played too rough, and the {objn} cracked into two pieces.", "Then the {objn} fell on the hard ground and broke.")
	g.quote("A", "My {objn} is broken!", "Oh no! What did I do?", "Now I can't play with it anymore.")
	g.say("{A} felt very {sad}.", "{A.S} sat down and cried.", "{A.S} held the pieces in {A.p} hands and sniffed.")
	g.para()
	g.parent("B")
	g.say("{A.P} {B.kind} heard {A} crying and came to see.", "{B} came over and knelt down next to {A.o}.")
	g.quote("B", "What happened, {sweetie|my dear|little one}?", "What's wrong, {A}?", "Why the long face?")
	g.quote("A", "I broke my {objn}. I didn't mean to.", "My {objn} broke!")
	g.quote("B", "Let's see if we can fix it.", "Don't be sad. We can fix it together.", "Broken things can often be fixed. Let me help.")
	g.say("{B} got some {glue|tape|string|nails|paint}. {B.S} and {A} worked together {slowly and carefully|for a long time|all afternoon}.",
		"{B} found {A.p} {toolbox|glue|tape}. Together, they fixed the {objn} piece by piece.")
	g.say("Soon the {objn} was as good as new.", "It had a small crack, but it worked again.",
		"When they were done, the {objn} looked even better than before.")
	g.para()
	g.say("{A} smiled and gave {B} a big hug.", "{A} was so {happy} that {A.s} danced around the room.")
	g.quote("A", "Thank you, {B}!", "You fixed it! You are the best!")
	g.say("{A} learned to be more careful with {A.p} toys.",
		"{A} learned that broken things can often be fixed with a little help and a lot of love.",
		"Even with its crack, the {objn} was still {A.p} favorite.",
		"After that, {A} played with the {objn} gently, and it never broke again.")
}

func (g *gen) sharing() {
	food := g.r.chance(0.4)
	if food {
		g.say("{When}, {A.p} {mom|dad|grandma|grandpa} gave {A.o} {afood}.", "{When}, {A} had {afood} for a snack.")
		g.vars["share"] = g.vars["food"]
	} else {
		g.say("{When}, {A} got {aobj} as a present.", "{A.S} had a new toy. It was {aobj}.")
		g.vars["share"] = g.vars["objn"]
	}
	g.say("{A.S} took it to the {place}.", "{A.S} went to the {place} with it.", "{A.S} sat {inplace} with it.")
	g.para()
	g.someone("B")
	g.say("At the {place}, {A.s} saw {B.a}.", "There {A.s} met {B.a}.", "Soon, {B.a} came over.")
	g.say("{B} looked at the {share} with big eyes.", "{B.S} looked at the {share} and then at {A}.")
	g.quote("B", "Can I {have some|play too|try it}?", "That looks {nice|fun|yummy}. Can I share it with you?")
	g.say("{A} held the {share} tight.", "{A} turned away.")
	g.quote("A", "No! It's mine.", "No, it is all mine!", "I don't want to share.")
	g.say("{B} looked {sad} and walked away.", "{B.S} sat down alone and looked at the ground.", "{B.P} smile went away.")
	g.para()
	if food {
		g.say("{A} ate the {share}, but it did not taste as good as {A.s} thought.", "{A} took a bite. But {A.s} did not feel happy.")
	} else {
		g.say("{A} played alone. But soon, {A.s} did not have any fun.", "Playing alone was not much fun.")
	}
	g.say("{A.S} thought about {B}.", "{A.S} looked at {B}, who was sitting all alone.", "{A} felt a funny feeling in {A.p} tummy.")
	g.say("{A.S} remembered what {A.p} {mom|dad|teacher|grandma} always said: \"Sharing is caring.\"",
		"{A.S} knew what {A.s} had to do.")
	g.say("{A} walked over to {B}.", "{A} went to {B} with the {share}.")
	g.quote("A", "I'm sorry, {B}. Do you want to share with me?", "Here, we can {share it|play together}.",
		"I was not nice. Let's share!")
	if food {
		g.say("{A} broke the {share} in two and gave {B} half.", "{A} gave {B} a big piece.")
	} else {
		g.say("They took turns with the {share}.", "{A} and {B} played with the {share} together.")
	}
	g.say("{B} smiled a big smile.", "{B.P} eyes lit up.")
	g.quote("B", "Thank you, {A}!", "You are very kind!", "This is the best!")
	g.para()
	g.say("{A} learned that sharing makes everyone happy.", "It was much more fun with two.",
		"From that day on, {A} and {B} were best friends, and they always shared.",
		"{A} found out that when you share, you get a friend.")
}

// smallCreature adds an unnamed small animal (for rescue and feeding stories).
func (g *gen) smallCreature(key string) {
	small := []string{"kitten", "puppy", "bird", "bunny", "duck", "squirrel", "hedgehog", "mouse", "chick",
		"lamb", "owl", "frog", "turtle", "raccoon", "fox", "goat", "parrot", "ladybug"}
	for {
		g.creature(key, false)
		for _, s := range small {
			if g.cast[key].Kind == s {
				return
			}
		}
	}
}

func (g *gen) rescue() {
	g.say("{When}, {A} went for a walk {inplace}.", "{When}, {A} was playing {inplace}.")
	g.maybe(0.5, "The sun was {shining|warm} and the birds were singing.", "The wind was blowing {softly|hard}.",
		"{A.S} {A.was} {humming a song|looking for {color} stones|counting clouds}.")
	g.say("Suddenly, {A.s} heard a {small|soft|sad|tiny} sound.", "Then {A.s} heard a strange noise.")
	g.vars["stuck"] = g.r.pick([]string{"up in a tall tree", "in a deep hole", "behind a high fence",
		"in a thorny bush", "on a rock in the river", "under a heavy branch", "in an old net", "in a muddy ditch"})
	g.smallCreature("C")
	g.say("{A.S} looked around and saw {C.a}. {C.S} {C.was} stuck {stuck}!",
		"It was {C.a}, stuck {stuck}.")
	g.say("{C} {C.sound} {sadly|softly|again and again}.", "{C} looked very scared.")
	g.quote("A", "Don't be scared, little {C.kind}. I will help you.", "Hold on! I'm coming!")
	g.para()
	g.say("{A} tried to reach the {C.kind}, but {A.s} {A.was} too small.", "{A.S} stretched as far as {A.s} could, but it was not enough.")
	if g.r.chance(0.5) {
		g.parent("B")
		g.say("{A} ran home to get {A.p} {B.kind}.", "{A} called for {A.p} {B.kind}.")
		g.quote("A", "{B}, come quick! {A.kind|There is a} {C.kind} needs help!", "{B}! A little {C.kind} is stuck!")
		g.say("{B} came {right away|running} with {tool}.")
		g.say("Together, {A} and {B} helped the {C.kind} {out|down}, slowly and carefully.")
	} else {
		g.say("Then {A} had an idea. {A.S} found {tool}.", "{A.S} looked around and found {tool}.")
		g.say("{A.S} used it to help the {C.kind}, slowly and carefully.", "Very gently, {A.s} helped the {C.kind} {out|down}.")
	}
	g.say("At last, the {C.kind} was safe!", "Soon the little {C.kind} was free.")
	g.para()
	g.say("{C} {C.sound} happily and {C.move} in a circle around {A}.", "The {C.kind} looked at {A} with thankful eyes.",
		"{C} rubbed {C.p} head against {A.p} hand.")
	g.quote("A", "You're safe now, little {C.kind}.", "Be careful next time!", "Go home to your family!")
	g.say("{A} felt proud of {A.r}.", "{A} felt warm and {happy} inside.")
	g.maybe(0.4, "Every day after that, the {C.kind} came to visit {A}.", "The {C.kind} became {A.p} new friend.")
	g.say("{A} learned that even a small {A.kind} can do a big kind thing.", "Helping others made {A.o} feel good.",
		"It is always right to help someone who needs it.")
}

func (g *gen) fear() {
	f := fears[g.r.intn(len(fears))]
	g.vars["fear"], g.vars["why"] = f.thing, g.expand(f.why)
	g.say("{A} was afraid of {fear}.", "{A.S} did not like {fear} at all.", "There was one thing {A} did not like: {fear}.")
	g.say("{A.S} thought that {why}.", "{A.S} {A.was} scared because {why}.")
	g.para()
	g.say("{When}, {A} had to face {fear}.", "{When}, {A} could not stay away from {fear} any longer.")
	g.say("{A.P} knees shook and {A.p} heart beat fast.", "{A.S} wanted to run and hide.", "{A.S} held {A.p} breath.")
	g.quote("A", "I can't do it. I'm too scared.", "I don't want to!", "What if something bad happens?")
	if g.r.chance(0.5) {
		g.parent("B")
	} else {
		g.someone("B")
	}
	g.meet("B")
	g.say("{B} sat down next to {A}.", "{B} took {A.p} hand.", "{B} gave {A} a warm smile.")
	g.quote("B", "Everyone feels scared sometimes. But you are braver than you think.",
		"I will be right here with you.", "Let's {count to three|take a big breath|sing a song} together.")
	g.say("{A} took a deep breath.", "{A} looked at {B} and nodded.")
	g.say("{One, two, three!|Step by step,} {A} faced {fear}.", "Slowly, {A} tried, one little step at a time.")
	g.para()
	g.say("It was not so scary after all!", "To {A.p} surprise, nothing bad happened.", "It was not as bad as {A.s} thought.")
	g.quote("A", "I did it!", "Look, I'm not scared anymore!", "That was fun!")
	g.say("{B} clapped and cheered.", "{B} gave {A.o} a high five.", "{B} hugged {A.o} tight.")
	g.say("{A} learned that being brave means trying even when you feel scared.",
		"From then on, {A} was not afraid of {fear} anymore.",
		"{A} felt proud. {A.S} knew {A.s} could be brave.")
}

func (g *gen) rainyDay() {
	g.parent("B")
	g.say("{A} and {B} planned a {picnic|trip|day} {inplace}.", "{B} promised to take {A} to the {place} on Saturday.")
	g.say("{A.S} packed {afood}, a blanket and {A.p} {objn}.", "{A.S} {A.was} so excited that {A.s} could not sleep.")
	g.para()
	g.say("But in the morning, the sky was gray.", "But when {A.s} woke up, rain was falling.", "But on Saturday, it started to rain.")
	g.say("Big drops tapped on the window.", "The wind blew and the rain poured down.", "Thunder rumbled far away.")
	g.quote("A", "Now we can't go!", "Oh no, the rain ruined everything!", "This is the worst day ever.")
	g.say("{A} pressed {A.p} nose to the window and sighed.", "{A.S} {A.was} very {sad}.")
	g.para()
	g.quote("B", "I have an idea. Let's have our {picnic|fun} inside!", "We can still have fun. Let's build a fort!",
		"Rainy days can be fun too. Come with me.")
	g.say("They put a blanket on the floor and {ate {afood}|had a picnic in the living room}.",
		"They built a fort with chairs and pillows.", "They baked cookies and made a big mess of flour.",
		"They drew pictures of the {place} with {color} crayons.")
	g.say("They {played games|told stories|sang songs} and laughed a lot.", "{A} forgot all about the rain.")
	g.maybe(0.6, "Later, the rain stopped, and a big rainbow came out.", "In the evening, the sun peeked out from the clouds.")
	g.para()
	g.quote("A", "This was the best day ever!", "Can we do this again?")
	g.say("{A} learned that plans can change, but fun can be found anywhere.",
		"{A} found out that a rainy day can be a happy day.", "{B} smiled and said they could, any time it rained.")
}

func (g *gen) lostInWoods() {
	g.vars["follow"] = g.r.pick([]string{"a yellow butterfly", "a hopping rabbit", "a shiny dragonfly", "a red balloon",
		"a trail of pretty stones", "a little bird", "a rolling ball"})
	g.say("{When}, {A} was playing near the edge of the {woods|forest|big field}.", "{When}, {A} went for a walk with {A.p} family.")
	g.say("{A.S} saw {follow} and followed it.", "Then {A.s} saw {follow}. {A.S} wanted to see it up close.")
	g.say("{A.S} went further and further.", "It went deeper into the trees, and {A} went after it.")
	g.para()
	g.say("When {A.s} stopped, {A.s} did not know where {A.s} {A.was}.", "Suddenly, everything looked strange. {A} was lost!")
	g.say("The trees were tall and the path was gone.", "It was getting dark and cold.")
	g.quote("A", "Hello? Is anyone there?", "I want to go home!", "Which way is home?")
	g.say("{A.S} felt very {scared|small|lonely}.")
	g.para()
	g.creature("B", g.r.chance(0.5))
	g.say("Then {B.a} appeared.", "Just then, {B.a} came out from behind a tree.")
	g.quote("B", "Are you lost, little one?", "Why are you here all alone?", "Don't be afraid. I know these woods.")
	g.quote("A", "Yes. I can't find my way home.", "I followed {follow} and now I am lost.")
	g.quote("B", "Follow me. I will show you the way.", "I know a path that goes to your house. Come!")
	g.say("{B} led {A} along a {narrow|winding|quiet} path.", "{A} walked beside {B}, and soon {A.s} felt better.")
	g.say("At last, {A.s} saw {A.p} house!", "Soon, {A.s} could see the lights of home.")
	g.para()
	g.parent("P")
	g.say("{P} ran out and hugged {A} tight.", "{P} was waiting at the door.")
	g.quote("P", "We were so worried about you!", "Where were you? I looked everywhere!")
	g.quote("A", "I'm sorry. I will not wander off again.", "I got lost, but a kind {B.kind} helped me.")
	g.say("{A} turned to thank {B}, but {B} was gone.", "{A} waved goodbye to {B}.")
	g.say("{A} learned to always stay close and ask before going far.", "From that day on, {A} never went into the woods alone.")
}

func (g *gen) newSkill() {
	s := skills[g.r.intn(len(skills))]
	g.vars["skill"], g.vars["skillg"], g.vars["fall"] = s.base, s.gerund, s.fall
	g.say("{A} wanted to learn to {skill}.", "{A} really wanted to {skill}, just like the big kids.", "More than anything, {A} wanted to {skill}.")
	g.say("{A.S} watched the others and thought it looked easy.", "{A.S} had tried before, but it was hard.")
	g.para()
	g.say("{When}, {A} decided to try.", "So {A} tried.")
	g.say("{A.S} {fall}.", "But {A.s} {fall}.")
	g.quote("A", "I can't do it!", "This is too hard!", "I will never learn.")
	g.say("{A.S} wanted to give up.", "{A.S} {A.was} ready to quit.")
	g.para()
	if g.r.chance(0.5) {
		g.parent("B")
	} else {
		g.someone("B")
	}
	g.meet("B")
	g.say("{B} saw {A} and came over.", "{B} had been watching.")
	g.quote("B", "Nobody gets it right the first time. Try again!", "Keep practicing. You will get better every day.",
		"I fell a lot when I learned too. Don't give up!")
	g.say("So {A} tried again. And again. And again.", "{A} practiced every day for a whole week.",
		"{A} tried again, a little slower this time.")
	g.say("Each time, {A.s} got a little better.", "Sometimes {A.s} {fall}, but {A.s} always got up.")
	g.para()
	g.say("Then one day, {A.s} did it!", "At last, {A} could {skill}!")
	g.quote("A", "Look! I can do it!", "I did it! I really did it!")
	g.say("{B} cheered {loudly|and clapped}.", "{B} gave {A.o} a big hug.")
	g.say("{A} learned that if you keep trying, you can do hard things.", "{A} was so {happy} that {A.s} never gave up.",
		"After that, {A} loved {skillg}, and {A.s} taught the little ones how to do it too.")
}

func (g *gen) mess() {
	g.parent("B")
	g.vars["job"] = g.r.pick([]string{"bake a cake", "paint a picture", "wash the dog", "make pancakes",
		"water the plants", "tidy up the toy box", "make lemonade", "build a tower of blocks"})
	g.vars["stuff"] = g.r.pick([]string{"flour", "paint", "mud", "water", "sugar", "glitter", "soap bubbles", "juice"})
	g.say("{When}, {A} wanted to {job} all by {A.r}.", "{When}, {A} had a big idea: {A.s} would {job} to surprise {B}.")
	g.say("{B} was busy in the {garden|other room|kitchen}.", "Nobody was watching.")
	g.para()
	g.say("But things did not go as planned.", "At first it went well. Then it did not.")
	g.say("Soon there was {stuff} everywhere!", "{Stuff} was on the floor, on the walls and even on {A.p} nose!",
		"Oops! The {stuff} spilled all over the floor.")
	g.say("{A} looked at the mess. {A.S} felt worried.", "{A.S} heard footsteps. {B} was coming!")
	g.maybe(0.5, "{A.S} thought about hiding.", "For a moment, {A.s} wanted to say the cat did it.")
	g.para()
	g.say("{B} came in and saw the mess.", "{B} stopped at the door. {B.P} eyes grew wide.")
	g.quote("B", "What happened here?", "Oh my! What is all this?")
	g.quote("A", "I'm sorry. I wanted to {job}, but I made a mess.", "It was me. I'm sorry.")
	g.say("{B} knelt down and smiled.", "{B} did not get angry.")
	g.quote("B", "Thank you for telling me the truth. Let's clean it up together.",
		"It's okay. Everyone makes mistakes. Let's fix it together.")
	g.say("They cleaned and scrubbed until everything was shiny.", "{A} got a cloth and {B} got a bucket, and they cleaned it all up.")
	g.say("Then they tried again, together. This time, it worked!", "Afterwards, {B} helped {A} {job}.")
	g.para()
	g.say("{A} learned that telling the truth is always best.", "{A} learned that it is okay to ask for help.",
		"{A} felt {happy}. Saying sorry had made everything better.")
}

func (g *gen) race() {
	g.someone("B")
	g.vars["goal"] = g.r.pick([]string{"the big oak tree", "the top of the hill", "the old red barn", "the end of the beach",
		"the pond", "the gate", "the swings", "the big rock"})
	g.say("{A} and {B} were good friends.", "{A} had a friend named {B}.", "{A} liked to play with {B}, who lived next door.")
	g.say("They both liked to run fast.", "They liked to see who was faster.")
	g.para()
	g.say("{When}, {B} said, \"Let's race to {goal}!\"", "{When}, {A} said, \"I bet I can beat you to {goal}!\"")
	g.say("Ready, set, go! They ran as fast as they could.", "They lined up. \"Ready, set, go!\" And off they went!")
	g.say("{A} was in front. {A.S} could almost touch {goal}.", "{A} ran faster and faster.")
	g.para()
	g.say("Then {A.s} heard a cry behind {A.o}.", "Suddenly, {B} tripped over a root and fell down.")
	g.say("{B} had fallen and hurt {B.p} knee.", "{B} was sitting on the ground, holding {B.p} knee.")
	g.say("{A} stopped. {A.S} could win the race, or {A.s} could help {A.p} friend.",
		"{A} wanted to win. But {A.s} wanted {B} to be okay even more.")
	g.say("{A} ran back to {B}.", "{A} turned around and went back.")
	g.quote("A", "Are you okay? Let me help you.", "Here, take my hand.")
	g.say("{A} helped {B} up. They walked to {goal} together, side by side.",
		"{A} helped {B} stand up, and they finished the race together.")
	g.para()
	g.quote("B", "Thank you, {A}. You could have won.", "You stopped for me!")
	g.quote("A", "Winning is not fun without my friend.", "Being your friend is better than winning.")
	g.say("{A} learned that helping a friend is more important than winning.", "They laughed, and {B.p} knee felt better already.",
		"From that day on, they never raced again without holding hands at the end.")
}

func (g *gen) gift() {
	g.parent("B")
	g.say("Tomorrow was {B.p} birthday.", "{A.P} {B.kind}'s birthday was coming soon.", "Soon it would be {B}'s birthday.")
	g.say("{A} wanted to give {B.o} a special present.", "{A} wanted to make {B} {happy}.")
	g.say("But {A} had no money to buy a gift.", "But what could {A.s} give?")
	g.para()
	g.say("{A.S} thought and thought.", "{A.S} looked around {inplace} for ideas.")
	idea := g.r.intn(4)
	switch idea {
	case 0:
		g.say("Then {A.s} saw some {color} flowers. {A.S} picked the prettiest ones and tied them with a ribbon.")
	case 1:
		g.say("Then {A.s} got {A.p} crayons and drew a big picture of {A.r} and {B} {inplace}.")
	case 2:
		g.say("Then {A.s} made a card. {A.S} wrote \"I love you\" in big {color} letters and added lots of hearts.")
	default:
		g.say("Then {A.s} found some shells and made a necklace with a piece of string.")
	}
	g.say("{A.S} hid the gift {spot1} so it would be a surprise.", "{A.S} wrapped it in paper and hid it.")
	g.para()
	g.say("The next morning, {A} gave {B} the gift.", "On {B.p} birthday, {A} ran to {B} with the gift.")
	g.quote("A", "Happy birthday! I made it just for you.", "Surprise! This is for you.")
	g.say("{B} opened it and smiled. {B.P} eyes were shiny with happy tears.", "{B} gasped. \"It is beautiful!\"")
	g.quote("B", "This is the best present I have ever had.", "Thank you! I will keep it forever.")
	g.say("{B} hugged {A} tight.", "{B} put the gift in a special place.")
	g.para()
	g.say("{A} learned that the best gifts come from the heart.", "{A} felt warm inside. Making someone happy felt wonderful.")
}

func (g *gen) hungryAnimal() {
	g.say("{When}, {A} sat {inplace} with {afood}.", "{When}, {A} took {afood} to the {place} for a snack.")
	g.smallCreature("C")
	g.say("{C.an} was watching {A.o}.", "Then {A.s} noticed {C.a} sitting nearby.")
	g.say("{C} looked thin and hungry.", "{C} stared at the {food} and {C.sound} softly.")
	g.para()
	g.quote("A", "Are you hungry, little {C.kind}?", "Do you want some?")
	g.say("{A} was hungry too. But {A.s} broke off a piece and gave it to the {C.kind}.",
		"{A} thought for a moment. Then {A.s} shared {A.p} {food} with the {C.kind}.")
	g.say("{C} ate it all up.", "The {C.kind} gobbled it down.")
	g.say("{C} {C.sound} happily.", "{C} looked much better.")
	g.para()
	g.say("The next day, the {C.kind} came back.", "{When}, {A} went back to the {place}, and the {C.kind} was there again.")
	g.say("{C.S} had something for {A}: a shiny {color} stone.", "This time {C.s} brought {C.p} friends to meet {A}.",
		"{C.S} showed {A} a secret place full of wild berries.")
	g.quote("A", "For me? Thank you!", "Hello, friends!", "Wow, this is wonderful!")
	g.para()
	g.say("{A} learned that kindness always comes back.", "{A} and the {C.kind} were friends from then on.",
		"Sharing a little had made {A} a big new friend.")
}

func (g *gen) seed() {
	g.parent("B")
	g.vars["plant"] = g.r.pick([]string{"sunflower", "tomato plant", "apple tree", "pumpkin", "rose bush", "bean plant",
		"daisy", "strawberry plant", "carrot", "tulip"})
	g.say("{When}, {B} gave {A} a tiny seed.", "{When}, {A} found a seed in {A.p} pocket and showed it to {B}.")
	g.quote("B", "If you take good care of it, it will grow into a big {plant}.", "Plant it, and see what happens.")
	g.say("{A} dug a little hole {inplace} and put the seed in.", "{A} planted the seed in a pot by the window.")
	g.para()
	g.say("The next day, {A} ran to look. Nothing!", "Every morning, {A} checked on the seed. Nothing happened.")
	g.quote("A", "Why isn't it growing?", "When will it grow?", "Maybe it's broken.")
	g.quote("B", "Seeds need time. Be patient.", "Give it water and sun, and wait.")
	g.say("So {A} watered it every day.", "{A} gave it water and sang to it.", "{A} waited and waited.")
	g.para()
	g.say("Then one morning, {A.s} saw a little green sprout!", "After many days, a tiny green leaf poked out of the dirt.")
	g.quote("A", "It's growing! It's really growing!", "Look! Look!")
	g.say("The sprout grew taller and taller.", "Weeks went by, and the plant grew big and strong.")
	g.say("At last, it became a beautiful {plant}.", "By the end of {season}, there was a big {plant}.")
	g.para()
	g.say("{A} learned that good things take time.", "{A} was proud. {A.S} had grown it all by {A.r}, with a little patience.",
		"{A} learned that patience and care can make something wonderful.")
}

func (g *gen) quarrel() {
	g.someone("B")
	b := g.r.pick([]string{"sand castle", "tower of blocks", "fort", "snowman", "boat out of boxes",
		"house for their toys", "track for toy cars", "igloo", "kite", "puppet theater"})
	g.vars["build"], g.vars["abuild"] = b, an(b)
	g.say("{A.S} had a friend named {B}.", "{A.P} best friend was {B.a}.", "{A} often played with {A.p} friend {B}.")
	g.say("{When}, {A} and {B} were building {abuild} {inplace}.", "{When}, {A} and {B} decided to make {abuild}.")
	g.say("{A} wanted it to be {color}. {B} wanted it to be different.", "{A} wanted to do it one way. {B} wanted to do it another way.")
	g.quote("A", "We should do it my way!", "My idea is better!")
	g.quote("B", "No, my way is better!", "That's not fair!")
	g.say("They {argued|shouted} and {pulled|pushed}, and the {build} fell apart.", "Soon they were both angry, and the game was ruined.")
	g.para()
	g.say("{B} went home. {A} sat alone.", "They sat on opposite sides, not talking.")
	g.say("{A} did not feel {happy}. {A.S} missed {B}.", "It was no fun without a friend.")
	g.say("{A} thought about what had happened.", "{A.S} knew {A.s} had not been very nice.")
	g.para()
	g.say("{A} went to {B} and said, \"I'm sorry. Can we be friends again?\"", "{A} walked over to {B}.")
	g.quote("A", "I'm sorry I was bossy. Let's use both our ideas.", "I'm sorry. Your idea was good too.")
	g.quote("B", "I'm sorry too!", "Okay! Let's try again.")
	g.say("They built the {build} again, with {A.p} idea and {B.p} idea together.", "This time, they took turns and listened to each other.")
	g.say("It was the best one they ever made.", "It was even better than before.")
	g.para()
	g.say("{A} and {B} learned that friends listen to each other.", "They learned that saying sorry can fix a friendship.")
}

func (g *gen) newFriend() {
	g.someone("B")
	g.say("{When}, a new family moved in next door. They had {B.a}.", "{When}, there was a new {B.kind} at school. {B.P} name was {B}.",
		"{When}, {B.a} moved into the house across the street.")
	g.say("{B} did not know anyone. {B.S} {B.was} very shy.", "{B} sat all alone and looked {sad}.")
	g.para()
	g.say("{A} saw {B} and wanted to say hello.", "{A} remembered how it felt to be new.")
	g.say("But {A} felt shy too.", "{A.S} {A.was} a little nervous.")
	g.say("Then {A.s} took a deep breath and walked over.", "Still, {A.s} walked over with a smile.")
	g.quote("A", "Hi! I'm {A}. Do you want to play?", "Hello! Do you like {actg}?")
	g.say("{B} looked up and smiled.", "{B.P} face lit up.")
	g.quote("B", "Yes, please!", "I would love to!", "I love {actg}!")
	g.para()
	g.say("They played {inplace} all afternoon.", "They spent the whole day {actg} and {act2g}.")
	g.say("{A} showed {B} {A.p} {obj}.", "{B} showed {A} how to {act2}.")
	g.say("They laughed until their tummies hurt.", "When the sun went down, they did not want to stop.")
	g.para()
	g.say("From that day on, {A} and {B} were best friends.", "{A} learned that a little hello can make a big friend.",
		"{A} was glad {A.s} had been brave enough to say hello.")
}
