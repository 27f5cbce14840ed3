package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
)

// Plan is one variant's graph as data: what `ktrdr-images plan` prints.
type Plan struct {
	Variant  string `json:"variant"`
	Image    string `json:"image"`
	Platform string `json:"platform"`
	Base     string `json:"base"`
	Shared   bool   `json:"shared_layers"`
	// BaseLayers is the base image's layer count (0 when planned without
	// a daemon to read it); Parts are the layers on top of it.
	BaseLayers int                       `json:"base_layers"`
	Parts      []string                  `json:"layers"`
	Env        []PlanLayer               `json:"environment"`
	Config     dockerspec.DockerOCIImage `json:"config"`
	Ops        []PlanOp                  `json:"ops"`
}

// PlanLayer is one package layer.
type PlanLayer struct {
	Name string `json:"name"`
	// Packages are its pins, "name==version", with " (index)" for one
	// from another index than the default.
	Packages []string `json:"packages"`
	// Bytes is the size the lock records for their artifacts (compressed
	// wheels); Unsized names the pins it records no size for.
	Bytes   int64    `json:"lock_bytes"`
	Unsized []string `json:"unsized,omitempty"`
	// Toolchain names the pins built from source, on the toolchain.
	Toolchain []string `json:"built_from_source,omitempty"`
	// SharedWith names the other planned variants that have this very
	// layer (the same vertex, so the same blob).
	SharedWith []string `json:"shared_with,omitempty"`
	// Digest is the layer's diff vertex.
	Digest digest.Digest `json:"vertex"`
}

// PlanOp is one LLB vertex, in the definition's order (inputs first).
type PlanOp struct {
	Digest digest.Digest `json:"digest"`
	Name   string        `json:"name,omitempty"`
	Op     *pb.Op        `json:"op"`
}

// Plans marshals each image's graph and decodes it into Plans.
func Plans(ctx context.Context, images []variants.Image) ([]Plan, error) {
	var out []Plan
	for _, img := range images {
		def, err := img.State.Marshal(ctx, llb.Platform(img.Platform))
		if err != nil {
			return nil, fmt.Errorf("variant %s: marshaling the graph: %w", img.Variant.Name, err)
		}
		ops, err := DecodeOps(def)
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", img.Variant.Name, err)
		}
		p := Plan{
			Variant:    img.Variant.Name,
			Image:      img.Name,
			Platform:   platforms.Format(img.Platform),
			Base:       img.Base,
			Shared:     img.Shared,
			Config:     img.Config,
			BaseLayers: len(img.BaseConfig.RootFS.DiffIDs),
			Ops:        ops,
		}
		for _, part := range img.Parts {
			p.Parts = append(p.Parts, part.Name)
		}
		for i, pl := range img.Packages {
			l := PlanLayer{Name: pl.Name, Bytes: pl.Size, Unsized: pl.Unsized}
			for _, r := range img.Layers[i].Requirements {
				s := r.Spec()
				if r.Index != "" {
					s += " (" + r.Index + ")"
				}
				l.Packages = append(l.Packages, s)
			}
			if img.Layers[i].Toolchain {
				l.Toolchain = pl.Build
			}
			p.Env = append(p.Env, l)
		}
		dgsts := partDigests(ops, img)
		for i := range p.Env {
			p.Env[i].Digest = dgsts["pkg "+p.Env[i].Name]
		}
		out = append(out, p)
	}
	// Which other variants have the same layer vertex.
	for i := range out {
		for j := range out[i].Env {
			d := out[i].Env[j].Digest
			for k := range out {
				if k == i || d == "" {
					continue
				}
				for _, l := range out[k].Env {
					if l.Digest == d {
						out[i].Env[j].SharedWith = append(out[i].Env[j].SharedWith, out[k].Variant)
					}
				}
			}
		}
	}
	return out, nil
}

// partDigests maps each of a merged image's parts to the digest of its
// vertex, read from the image's decoded ops: the last op points at the
// merge, whose inputs are the base and then the parts, in order. Images
// not assembled by one merge of their parts (plain copies) get none.
func partDigests(ops []PlanOp, img variants.Image) map[string]digest.Digest {
	out := map[string]digest.Digest{}
	n := len(ops)
	if !img.Shared || n < 2 || len(ops[n-1].Op.Inputs) != 1 {
		return out
	}
	root := digest.Digest(ops[n-1].Op.Inputs[0].Digest)
	for _, op := range ops {
		if op.Digest != root || op.Op.GetMerge() == nil || len(op.Op.Inputs) != len(img.Parts)+1 {
			continue
		}
		for i, part := range img.Parts {
			out[part.Name] = digest.Digest(op.Op.Inputs[i+1].Digest)
		}
	}
	return out
}

// WriteLayers prints each image's layers as a table: the package layers
// with their pins, the size the lock records for them and the other
// planned images that have the very same layer.
func WriteLayers(w io.Writer, plans []Plan) error {
	var b strings.Builder
	for i, p := range plans {
		if i > 0 {
			b.WriteString("\n")
		}
		count := fmt.Sprintf("%d layers and its base's (not counted without a daemon)", len(p.Parts))
		if p.BaseLayers > 0 {
			count = fmt.Sprintf("%d layers (%d of its base)", p.BaseLayers+len(p.Parts), p.BaseLayers)
		}
		var largest PlanLayer
		for _, l := range p.Env {
			if l.Bytes > largest.Bytes {
				largest = l
			}
		}
		fmt.Fprintf(&b, "%s %s: %s, %d package layers", p.Variant, p.Image, count, len(p.Env))
		if largest.Name != "" {
			fmt.Fprintf(&b, ", the largest the lock gives a size for: %s (%s)", largest.Name, size(largest.Bytes))
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LAYER\tLOCK SIZE\tPACKAGES\tSHARED WITH")
		for _, l := range p.Env {
			sz := size(l.Bytes)
			if len(l.Unsized) > 0 {
				sz += fmt.Sprintf(" + %d unsized", len(l.Unsized))
			}
			shared := strings.Join(l.SharedWith, ", ")
			if shared == "" {
				shared = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.Name, sz, strings.Join(l.Packages, " "), shared)
		}
		tw.Flush()
		var built []string
		for _, l := range p.Env {
			for _, n := range l.Toolchain {
				built = append(built, n+" ("+l.Name+")")
			}
		}
		if len(built) > 0 {
			fmt.Fprintf(&b, "  built from source on the toolchain: %s\n", strings.Join(built, ", "))
		} else {
			b.WriteString("  no package is built from source: no toolchain\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// DecodeOps decodes a definition's ops in order, with their custom names.
// The last entry of a definition is the terminal vertex that only points
// at the result; it is kept, as buildctl debug dump-llb keeps it.
func DecodeOps(def *llb.Definition) ([]PlanOp, error) {
	var out []PlanOp
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			return nil, fmt.Errorf("decoding an LLB op: %w", err)
		}
		d := digest.FromBytes(dt)
		name := ""
		if md, ok := def.Metadata[d]; ok {
			name = md.Description["llb.customname"]
		}
		out = append(out, PlanOp{Digest: d, Name: name, Op: &op})
	}
	return out, nil
}

// WriteJSON prints plans as indented JSON: one object for one variant, a
// list for several.
func WriteJSON(w io.Writer, plans []Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if len(plans) == 1 {
		return enc.Encode(plans[0])
	}
	return enc.Encode(plans)
}

// WriteDot prints plans as one Graphviz digraph; a vertex shared by several
// variants appears once.
func WriteDot(w io.Writer, plans []Plan) error {
	var b strings.Builder
	b.WriteString("digraph llb {\n  rankdir=BT;\n  node [shape=box, fontname=monospace, fontsize=10];\n")
	seen := map[digest.Digest]bool{}
	var edges []string
	for _, p := range plans {
		for _, op := range p.Ops {
			if seen[op.Digest] {
				continue
			}
			seen[op.Digest] = true
			label := op.Name
			if label == "" {
				label = opKind(op.Op)
			}
			fmt.Fprintf(&b, "  %q [label=%q];\n", short(op.Digest), short(op.Digest)+"\n"+label)
			for _, in := range op.Op.Inputs {
				edges = append(edges, fmt.Sprintf("  %q -> %q;\n", short(digest.Digest(in.Digest)), short(op.Digest)))
			}
		}
		if n := len(p.Ops); n > 0 {
			fmt.Fprintf(&b, "  %q [shape=ellipse, label=%q];\n  %q -> %q;\n", p.Variant, p.Image, short(p.Ops[n-1].Digest), p.Variant)
		}
	}
	sort.Strings(edges)
	edges = compact(edges)
	for _, e := range edges {
		b.WriteString(e)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func compact(xs []string) []string {
	var out []string
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func short(d digest.Digest) string {
	s := d.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

func opKind(op *pb.Op) string {
	switch o := op.Op.(type) {
	case *pb.Op_Source:
		return "source " + o.Source.Identifier
	case *pb.Op_Exec:
		return "exec " + strings.Join(o.Exec.Meta.Args, " ")
	case *pb.Op_File:
		return "file"
	case *pb.Op_Merge:
		return "merge"
	case *pb.Op_Diff:
		return "diff"
	}
	return "result"
}
