package stories

// The lexicon. Lists are plain words; grammar (articles, pronouns, verb forms) is added by the
// generator. Keep entries lower case unless they are names.

var girlNames = []string{
	"Lily", "Mia", "Sara", "Emma", "Anna", "Zoe", "Lucy", "Ella", "Ruby", "Rosa", "Maya", "Nina",
	"Amy", "Kate", "Ivy", "Grace", "Hannah", "Chloe", "Sophie", "Olivia", "Ava", "Mila", "Leah",
	"Jade", "Daisy", "Poppy", "Molly", "Hazel", "Clara", "Alice", "Tara", "Nora", "Wendy", "Fiona",
	"Greta", "Julia", "Lena", "Priya", "Aisha", "Mei", "Yuki", "Fatima", "Sofia", "Elena", "Isla",
	"Freya", "Bella", "Gina", "Holly", "Ellie", "Beth", "Kira", "Luna", "Nadia", "Paula", "Rita",
	"Tess", "Vera", "Zara", "Amara", "Lola", "Maria", "Ingrid", "Keiko", "Layla", "Noor", "Suki",
}

var boyNames = []string{
	"Tom", "Ben", "Max", "Jack", "Leo", "Tim", "Joe", "Dan", "Finn", "Noah", "Liam", "Jake", "Luke",
	"Owen", "Ryan", "Eli", "Adam", "Hugo", "Oscar", "Theo", "Milo", "Felix", "Jonah", "Kai", "Omar",
	"Ravi", "Ken", "Hiro", "Carlos", "Diego", "Mateo", "Ivan", "Pablo", "Arlo", "Ezra", "Henry",
	"Louis", "Oliver", "Peter", "Simon", "Victor", "Billy", "Bobby", "Danny", "Eddie", "Freddie",
	"George", "Harry", "Jimmy", "Kevin", "Marco", "Nick", "Pete", "Sami", "Tariq", "Yusuf", "Arjun",
	"Kofi", "Lars", "Matteo", "Otto", "Rafael", "Stefan", "Toby", "Umar", "Wes", "Zane",
}

var theyNames = []string{
	"Alex", "Sky", "River", "Robin", "Jordan", "Casey", "Riley", "Quinn", "Sage", "Rowan", "Ash",
	"Jessie", "Morgan", "Avery", "Frankie", "Remy", "Charlie", "Jamie",
}

var petNames = []string{
	"Spot", "Rusty", "Fluffy", "Coco", "Buddy", "Pip", "Tiny", "Snowy", "Patch", "Biscuit", "Pepper",
	"Honey", "Ginger", "Shadow", "Whiskers", "Bubbles", "Nibbles", "Sparky", "Ziggy", "Lulu", "Momo",
	"Bruno", "Teddy", "Sunny", "Misty", "Peanut", "Pumpkin", "Muffin", "Cookie", "Socks", "Bingo",
	"Dotty", "Fuzzy", "Hoppy", "Squeaky", "Twinkle", "Button", "Clover", "Maple", "Acorn", "Pebble",
	"Noodle", "Waffle", "Jelly", "Marble", "Olive", "Sprout", "Thistle", "Bramble", "Flash",
}

// animal is a kind of animal with the sound it makes and how it moves.
type animal struct {
	name, plural, sound, move string
}

var animals = []animal{
	{"dog", "dogs", "barked", "ran"}, {"puppy", "puppies", "yipped", "bounced"},
	{"cat", "cats", "meowed", "crept"}, {"kitten", "kittens", "mewed", "tumbled"},
	{"bunny", "bunnies", "squeaked", "hopped"}, {"rabbit", "rabbits", "thumped", "hopped"},
	{"fox", "foxes", "yelped", "trotted"}, {"bear", "bears", "growled", "lumbered"},
	{"owl", "owls", "hooted", "flew"}, {"bird", "birds", "chirped", "flew"},
	{"duck", "ducks", "quacked", "waddled"}, {"frog", "frogs", "croaked", "leaped"},
	{"mouse", "mice", "squeaked", "scurried"}, {"squirrel", "squirrels", "chattered", "scampered"},
	{"turtle", "turtles", "sighed", "crawled"}, {"horse", "horses", "neighed", "galloped"},
	{"pony", "ponies", "neighed", "trotted"}, {"cow", "cows", "mooed", "wandered"},
	{"pig", "pigs", "oinked", "trotted"}, {"sheep", "sheep", "baaed", "wandered"},
	{"lamb", "lambs", "bleated", "skipped"}, {"goat", "goats", "bleated", "climbed"},
	{"hen", "hens", "clucked", "strutted"}, {"chick", "chicks", "peeped", "hopped"},
	{"lion", "lions", "roared", "prowled"}, {"tiger", "tigers", "growled", "prowled"},
	{"elephant", "elephants", "trumpeted", "stomped"}, {"monkey", "monkeys", "chattered", "swung"},
	{"giraffe", "giraffes", "hummed", "strolled"}, {"zebra", "zebras", "snorted", "galloped"},
	{"deer", "deer", "snorted", "leaped"}, {"wolf", "wolves", "howled", "loped"},
	{"hedgehog", "hedgehogs", "snuffled", "shuffled"}, {"raccoon", "raccoons", "chittered", "crept"},
	{"beaver", "beavers", "grunted", "paddled"}, {"otter", "otters", "squealed", "swam"},
	{"seal", "seals", "barked", "flopped"}, {"penguin", "penguins", "squawked", "waddled"},
	{"whale", "whales", "sang", "swam"}, {"dolphin", "dolphins", "clicked", "swam"},
	{"crab", "crabs", "clicked", "scuttled"}, {"snail", "snails", "sighed", "slid"},
	{"ladybug", "ladybugs", "buzzed", "flew"}, {"bee", "bees", "buzzed", "flew"},
	{"butterfly", "butterflies", "fluttered", "fluttered"}, {"ant", "ants", "marched", "marched"},
	{"parrot", "parrots", "squawked", "flew"}, {"swan", "swans", "honked", "glided"},
	{"goose", "geese", "honked", "waddled"}, {"donkey", "donkeys", "brayed", "plodded"},
	{"koala", "koalas", "grunted", "climbed"}, {"panda", "pandas", "squeaked", "rolled"},
	{"kangaroo", "kangaroos", "grunted", "bounded"}, {"badger", "badgers", "grumbled", "dug"},
	{"mole", "moles", "sniffed", "dug"}, {"dragon", "dragons", "rumbled", "flew"},
	{"dinosaur", "dinosaurs", "roared", "stomped"}, {"unicorn", "unicorns", "neighed", "pranced"},
}

// toys and small things that can be carried, lost, shared or broken
var things = []string{
	"ball", "kite", "doll", "teddy bear", "toy car", "toy train", "toy boat", "robot", "puzzle",
	"drum", "whistle", "yo-yo", "spinning top", "jump rope", "balloon", "blanket", "pillow", "hat",
	"scarf", "necklace", "bracelet", "ring", "crown", "magic wand", "book", "notebook", "pencil",
	"crayon", "paintbrush", "bucket", "shovel", "basket", "backpack", "lunchbox", "water bottle",
	"cup", "bowl", "spoon", "key", "box", "treasure map", "flag", "bell", "seashell", "stone",
	"feather", "umbrella", "marble", "button", "ribbon", "sock", "boot", "coat", "sweater", "lamp",
	"clock", "radio", "camera", "guitar", "flute", "trumpet", "jar", "candle", "mirror", "rope",
	"net", "fishing rod", "paper plane", "toy rocket", "puppet", "music box", "snow globe",
	"picture book", "sticker", "tiara", "toy horse", "wooden sword", "shield", "telescope",
	"compass", "lantern", "pinwheel", "rubber duck", "toy drum", "sandcastle bucket", "glove",
	"rain boot", "wagon", "scooter", "bike", "skateboard", "sled", "tent", "toy truck",
}

var thingAdjs = []string{
	"shiny", "red", "blue", "soft", "big", "small", "old", "new", "colorful", "bright", "pretty",
	"fluffy", "round", "tiny", "golden", "striped", "spotted", "sparkly",
	"green", "yellow", "purple", "pink", "orange", "silver", "little", "funny", "magic",
	"lovely", "fancy", "squeaky", "bouncy", "heavy", "light", "silly", "precious", "brand new",
	"tall", "bumpy", "smooth", "warm", "cozy", "glittery", "polka-dot",
}

var heroAdjs = []string{
	"kind", "brave", "curious", "shy", "happy", "clever", "funny", "gentle", "friendly", "silly",
	"busy", "playful", "helpful", "quiet", "lively", "cheerful", "careful", "smart", "sleepy",
	"bold", "proud", "little", "young", "tiny", "cheeky", "thoughtful", "polite", "cheery",
	"adventurous", "bouncy", "dreamy", "eager", "generous", "honest", "jolly", "lucky", "merry",
	"sweet", "wise", "chatty", "nosy", "stubborn", "grumpy", "fearless", "hungry", "bright",
}

// place: noun and the preposition it takes
type place struct{ name, prep string }

var places = []place{
	{"park", "in"}, {"garden", "in"}, {"forest", "in"}, {"beach", "at"}, {"lake", "by"},
	{"river", "by"}, {"farm", "on"}, {"meadow", "in"}, {"hill", "on"}, {"playground", "at"},
	{"school yard", "in"}, {"library", "at"}, {"zoo", "at"}, {"market", "at"}, {"village green", "on"},
	{"backyard", "in"}, {"kitchen", "in"}, {"attic", "in"}, {"barn", "in"}, {"pond", "by"},
	{"field", "in"}, {"mountain", "on"}, {"island", "on"}, {"harbor", "at"}, {"bakery", "at"},
	{"toy shop", "at"}, {"museum", "at"}, {"castle", "at"}, {"jungle", "in"}, {"orchard", "in"},
	{"vegetable patch", "in"}, {"treehouse", "in"}, {"campsite", "at"}, {"big city", "in"},
	{"train station", "at"}, {"swimming pool", "at"}, {"woods", "in"}, {"valley", "in"},
	{"sunflower field", "in"}, {"old lighthouse", "at"}, {"fair", "at"}, {"circus", "at"},
	{"bridge", "on"}, {"snowy hill", "on"}, {"riverbank", "on"}, {"cave", "in"},
}

// hiding spots: where lost things turn up
var spots = []string{
	"under a big rock", "behind a tree", "in the tall grass", "under the bench", "near the pond",
	"inside an old log", "under a pile of leaves", "next to the fence", "behind the slide",
	"in a bush", "under the bed", "behind the sofa", "in the toy box", "under a blanket",
	"on top of the shelf", "in the sandbox", "beside the flower pot", "under the kitchen table",
	"in a puddle", "behind the door", "inside a boot", "in the laundry basket", "under the stairs",
	"next to the mailbox", "in the basket of apples", "behind the woodpile", "under a mushroom",
	"in a bird's nest", "at the bottom of the garden", "in the dog's bed",
}

var foods = []string{
	"apple", "banana", "cookie", "cake", "sandwich", "carrot", "pear", "muffin", "pancake",
	"cupcake", "peach", "plum", "pie", "pretzel", "bun", "biscuit", "orange", "lemon tart",
	"cheese sandwich", "slice of bread", "bowl of soup", "bowl of berries", "bunch of grapes",
	"ice cream cone", "honey cake", "jam sandwich", "slice of watermelon", "candy apple", "donut",
	"cherry pie", "strawberry", "waffle", "piece of toast", "egg", "bowl of porridge", "cracker",
}

// activities: a verb phrase in its base form ("paint pictures"); gerund() makes "painting pictures"
var activities = []string{
	"paint pictures", "sing songs", "dance", "read books", "run fast", "climb trees",
	"build sand castles", "ride a bike", "swim in the lake", "bake cakes", "look at the stars",
	"collect shells", "draw animals", "pick flowers", "jump in puddles", "play hide and seek",
	"fly a kite", "tell jokes", "watch the clouds", "make music", "plant seeds", "play the drums",
	"skip stones", "chase butterflies", "build towers with blocks", "play dress up", "count birds",
	"make mud pies", "roll down hills", "play tag", "write stories", "help in the kitchen",
	"feed the ducks", "splash in the river", "hum little tunes", "play catch", "make paper boats",
	"ride the swing", "dig for treasure", "explore the woods", "visit the library", "play the flute",
	"stack pebbles", "blow bubbles", "play with clay", "learn new words", "fix broken toys",
	"do cartwheels", "whistle", "hop on one foot", "solve puzzles", "make necklaces",
}

var colors = []string{
	"red", "blue", "green", "yellow", "purple", "pink", "orange", "white", "brown", "gray",
	"golden", "silver",
}

var tools = []string{
	"a long stick", "a ladder", "a rope", "a bucket", "a big box to stand on", "a net",
	"a tall chair", "a broom", "a garden hose", "a blanket", "a basket on a string",
}

var fears = []struct{ thing, why string }{
	{"the dark", "there might be monsters under the bed"},
	{"thunder", "the sky sounded so loud and angry"},
	{"deep water", "the water looked too big and deep"},
	{"the big slide", "it was so high"},
	{"the dentist", "the chair looked strange and the tools made funny noises"},
	{"the new school", "everyone there was a stranger"},
	{"the old cave", "it was dark and full of echoes"},
	{"the big dog next door", "it barked so loudly"},
	{"spiders", "they had so many legs"},
	{"the tall tree", "the ground looked very far away"},
	{"the school play", "so many people would be watching"},
	{"the swimming pool", "the water might go up {A.p} nose"},
}

var skills = []struct{ base, gerund, fall string }{
	{"ride a bike", "riding a bike", "wobbled and fell over"},
	{"swim", "swimming", "splashed and sank and had to grab the side"},
	{"tie shoelaces", "tying shoelaces", "made a big knot instead"},
	{"whistle", "whistling", "only blew air"},
	{"skate", "skating", "slipped and sat down hard"},
	{"jump rope", "jumping rope", "tripped on the rope"},
	{"climb the rope", "climbing the rope", "slid back down"},
	{"read a whole book", "reading a whole book", "got stuck on a long word"},
	{"bake bread", "baking bread", "made the dough far too sticky"},
	{"play the piano", "playing the piano", "pressed all the wrong keys"},
	{"fly a kite", "flying a kite", "watched the kite crash into the grass"},
	{"catch a ball", "catching a ball", "missed, and the ball rolled away"},
	{"do a cartwheel", "doing a cartwheel", "landed in a heap"},
	{"count to one hundred", "counting to one hundred", "got mixed up after fifty"},
}

var weathers = []string{"sunny", "bright", "windy", "cloudy", "warm", "cold", "snowy", "rainy", "breezy", "quiet", "lovely"}
var dayTimes = []string{"morning", "afternoon", "day", "evening"}
var seasons = []string{"spring", "summer", "autumn", "winter"}

var happyWords = []string{"happy", "glad", "proud", "excited", "thrilled", "delighted", "joyful", "cheerful"}
var sadWords = []string{"sad", "upset", "worried", "gloomy", "unhappy", "grumpy", "disappointed", "lonely"}
var saidWords = []string{"said", "said", "said", "asked", "cried", "shouted", "whispered", "called", "replied"}
var exclaim = []string{"Oh no", "Oh dear", "Uh oh", "Oh my", "Goodness", "Oh", "Wow", "Look"}

var flowers = []string{"tulip", "rose", "daisy", "poppy", "dandelion", "violet", "buttercup", "bluebell",
	"marigold", "sunflower", "daffodil", "lavender", "clover", "pansy", "orchid", "snowdrop"}

var trees = []string{"oak", "pine", "willow", "maple", "birch", "cherry tree", "apple tree", "palm tree", "chestnut tree", "elm"}

var neighbors = []string{"Old Mr. Brown", "Mrs. Lee", "The baker", "The farmer", "The mail carrier", "Miss Patel",
	"The man with the ice cream truck", "Mr. Okafor", "The lady from the flower shop", "Granny Rose", "The fisherman",
	"The school teacher", "Mrs. Garcia", "The old gardener", "Mr. Novak", "The bus driver"}

var smells = []string{"fresh bread", "pine trees", "rain", "roses", "the salty sea", "cut grass", "warm cookies",
	"wild flowers", "hot chocolate", "oranges", "wet leaves", "cinnamon", "campfire smoke", "soap"}

var sounds = []string{"Bees buzzed", "Birds sang", "Frogs croaked", "Leaves rustled", "Crickets chirped",
	"Church bells rang", "Children laughed", "Waves splashed", "A dog barked", "The wind whistled", "Raindrops pattered",
	"A train rumbled"}
