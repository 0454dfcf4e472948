package train

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/data"
)

// Checkpoint metadata that names the data a checkpoint was trained on: the SHA-256 of both shards
// (the manifest's) and of the tokenizer file. A resume on other data or another tokenizer is
// refused unless Options.AllowDataChange: the token ids would mean other text, or the lineage's
// numbers would mix two corpora, without anyone having asked for it.
const (
	metaTrainSHA     = "data_train_sha256"
	metaValSHA       = "data_val_sha256"
	metaTokenizerSHA = "tokenizer_sha256"
)

// dataIdentity is what a run's checkpoint records of its data (the tokenizer's only when its file
// is there to read: a dataset without one trains, and cannot be sampled from).
func dataIdentity(ds *data.Dataset) map[string]string {
	id := map[string]string{metaTrainSHA: ds.Manifest.Train.SHA256, metaValSHA: ds.Manifest.Val.SHA256}
	if path, err := ds.TokenizerFile(); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			id[metaTokenizerSHA] = sha256Hex(b)
		}
	}
	return id
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkResumeData compares the data a checkpoint was trained on with ds. It returns an error
// naming what differs (nil when allow is set: then note says so), and a note when the checkpoint
// is older than these records and cannot be checked (fully or in part).
func checkResumeData(c *ckpt.Checkpoint, ds *data.Dataset, allow bool) (note string, err error) {
	now := dataIdentity(ds)
	was := map[string]string{}
	for _, k := range []string{metaTrainSHA, metaValSHA, metaTokenizerSHA} {
		was[k] = c.Meta[k]
	}
	// Checkpoints from before these records still carry the tokenizer itself.
	if was[metaTokenizerSHA] == "" {
		if b, err := base64.StdEncoding.DecodeString(c.Meta["tokenizer"]); err == nil && len(b) > 0 {
			was[metaTokenizerSHA] = sha256Hex(b)
		}
	}
	var diff, unknown []string
	for _, f := range []struct{ key, what string }{
		{metaTokenizerSHA, "tokenizer"}, {metaTrainSHA, "train split"}, {metaValSHA, "val split"},
	} {
		switch {
		case was[f.key] == "" || now[f.key] == "":
			unknown = append(unknown, f.what)
		case was[f.key] != now[f.key]:
			diff = append(diff, fmt.Sprintf("%s (sha256 %.12s… in the checkpoint, %.12s… in %s)", f.what, was[f.key], now[f.key], ds.Dir))
		}
	}
	if len(unknown) > 0 {
		note = fmt.Sprintf("resume: no checksum of the %s to compare (a checkpoint from before they were recorded, "+
			"or a dataset without a tokenizer file): cannot check that the checkpoint was trained on %s", strings.Join(unknown, " or "), ds.Dir)
	}
	if len(diff) == 0 {
		return note, nil
	}
	msg := "the checkpoint was trained on other data: " + strings.Join(diff, "; ")
	if allow {
		return strings.TrimPrefix(note+"\n", "\n") + "resume: " + msg + "; going on (--allow-data-change)", nil
	}
	why := "the val_bpb of the lineage would mix two corpora"
	if was[metaTokenizerSHA] != "" && now[metaTokenizerSHA] != "" && was[metaTokenizerSHA] != now[metaTokenizerSHA] {
		why = "with another tokenizer the token ids the model learnt stand for other text"
	}
	return "", fmt.Errorf("%s: %s. Resume on the data it was trained on, or pass --allow-data-change "+
		"(train.Options.AllowDataChange) to continue on this data anyway", msg, why)
}
