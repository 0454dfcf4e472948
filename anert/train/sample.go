package train

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/sample"
	"github.com/anelab/anelab/data"
)

// LoadModel rebuilds the model a checkpoint describes (CPU backend) with its weights.
func LoadModel(path string) (*model.Model, *ckpt.Checkpoint, error) {
	c, err := ckpt.Load(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.New(c.Config.Model, uint64(c.Config.Train.Seed), model.NewCPU())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if act := c.Meta["active"]; act != "" && c.Config.Model.Compact {
		var ids data.IDSet
		if err := json.Unmarshal([]byte(act), &ids); err != nil {
			return nil, nil, fmt.Errorf("%s: active ids: %w", path, err)
		}
		if err := m.SetActive(ids); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.Restore(m.Params(), ckpt.ModelPrefix, c.Config.Model); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	m.WeightsChanged() // as after every change of the weights (a backend's copies of them)
	// A checkpoint of a diverged model would sample garbage with no error: refuse it by name.
	for _, p := range m.Params() {
		for i, w := range p.W {
			if w != w || w > math.MaxFloat32 || w < -math.MaxFloat32 {
				return nil, nil, fmt.Errorf("%s: weight %s[%d] = %v is not finite: the model diverged before this checkpoint", path, p.Name, i, w)
			}
		}
	}
	return m, c, nil
}

// Tokenizer is the tokenizer embedded in a checkpoint.
func Tokenizer(c *ckpt.Checkpoint) (data.Tokenizer, error) {
	kind, enc := c.Meta["tokenizer_kind"], c.Meta["tokenizer"]
	if kind == "" || enc == "" {
		return nil, fmt.Errorf("%s has no tokenizer embedded (written by an older version?)", c.Path)
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: embedded tokenizer: %w", c.Path, err)
	}
	return data.ReadTokenizer(kind, strings.NewReader(string(b)))
}

// Sample generates text from the checkpoint at path, continuing prompt (or the start of a
// document when prompt is empty), and returns prompt + continuation.
func Sample(path, prompt string, o sample.Options) (string, error) {
	m, c, err := LoadModel(path)
	if err != nil {
		return "", err
	}
	tok, err := Tokenizer(c)
	if err != nil {
		return "", err
	}
	bos := -1
	if s := c.Meta["bos"]; s != "" {
		bos, err = strconv.Atoi(s)
		if err != nil || bos >= c.Config.Model.Vocab {
			return "", fmt.Errorf("%s: bos token %q is not an id below model.vocab = %d", path, s, c.Config.Model.Vocab)
		}
	}
	var ids []uint16
	if bos >= 0 {
		ids = append(ids, uint16(bos))
	}
	for _, id := range tok.Encode(prompt) {
		ids = append(ids, uint16(id))
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("sample: give a --prompt (this tokenizer has no start-of-document token)")
	}
	o.Stop = bos
	gen, err := sample.Generate(m, ids, o)
	if err != nil {
		return "", err
	}
	return prompt + data.DecodeTokens(tok, gen), nil
}
