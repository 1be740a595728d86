package tinymodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files are the names Write creates inside its directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Write creates dir (if needed) and writes config.json and model.safetensors for s. The bytes depend only on
// s, never on the platform, time or Go version.
func Write(dir string, s Spec) error {
	cfg, weights, err := Encode(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tinymodel: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ConfigFile, cfg}, {WeightsFile, weights}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("tinymodel: write %s: %w", p, err)
		}
	}
	return nil
}

// Encode returns the bytes of config.json and model.safetensors for s.
func Encode(s Spec) (config, weights []byte, err error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	config, err = s.configJSON()
	if err != nil {
		return nil, nil, err
	}
	var ts []stTensor
	for _, t := range s.tensors() {
		v := t.values(s.Seed)
		st := stTensor{name: t.name, shape: t.shape, dtype: "F32"}
		if s.DType == BFloat16 {
			st.dtype, st.data = "BF16", bf16Bytes(v)
		} else {
			st.data = f32Bytes(v)
		}
		ts = append(ts, st)
	}
	weights, err = encodeSafetensors(ts, map[string]string{"format": "pt", "generator": "omnikv tinymodel " + s.Name})
	if err != nil {
		return nil, nil, fmt.Errorf("tinymodel: %s: %w", s.Name, err)
	}
	return config, weights, nil
}

// jsonFloat formats a float the way Python's json does for the values used here: always with a decimal point
// or exponent, so that Python reads it back as a float ("8.0", not "8").
func jsonFloat(f float64) json.RawMessage {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return json.RawMessage(s)
}

// configJSON renders config.json with sorted keys and two-space indent, like transformers' save_pretrained.
func (s *Spec) configJSON() ([]byte, error) {
	c := map[string]any{
		"architectures":           []string{s.Architecture},
		"attention_dropout":       jsonFloat(0),
		"bos_token_id":            s.BOS,
		"eos_token_id":            s.EOS,
		"head_dim":                s.HeadDim,
		"hidden_act":              "silu",
		"hidden_size":             s.Hidden,
		"initializer_range":       jsonFloat(0.02),
		"intermediate_size":       s.Intermediate,
		"max_position_embeddings": s.MaxPositions,
		"model_type":              s.ModelType,
		"num_attention_heads":     s.Heads,
		"num_hidden_layers":       s.Layers,
		"num_key_value_heads":     s.KVHeads,
		"rms_norm_eps":            jsonFloat(s.RMSNormEps),
		"rope_theta":              jsonFloat(s.RopeTheta),
		"rope_scaling":            nil,
		"tie_word_embeddings":     s.TieEmbeddings,
		"torch_dtype":             string(s.DType),
		"use_cache":               true,
		"vocab_size":              s.Vocab,
	}
	switch s.ModelType {
	case "llama":
		c["attention_bias"] = s.QKVBias
		c["mlp_bias"] = false
		c["pretraining_tp"] = 1
	case "qwen2":
		c["use_sliding_window"] = false
		c["sliding_window"] = nil
		c["max_window_layers"] = s.Layers
	}
	if rs := s.RopeScaling; rs != nil {
		r := map[string]any{"rope_type": rs.Type, "factor": jsonFloat(rs.Factor)}
		if rs.Type == "llama3" {
			r["low_freq_factor"] = jsonFloat(rs.LowFreqFactor)
			r["high_freq_factor"] = jsonFloat(rs.HighFreqFactor)
			r["original_max_position_embeddings"] = rs.OriginalMaxPositions
		}
		c["rope_scaling"] = r
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("tinymodel: %s: config.json: %w", s.Name, err)
	}
	return buf.Bytes(), nil
}
