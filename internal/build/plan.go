package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/ktrdr/ktrdr-images/variants"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
)

// Plan is one variant's graph as data: what `ktrdr-images plan` prints.
type Plan struct {
	Variant  string                    `json:"variant"`
	Image    string                    `json:"image"`
	Platform string                    `json:"platform"`
	Base     string                    `json:"base"`
	Shared   bool                      `json:"shared_layers"`
	Parts    []string                  `json:"layers"`
	Env      []PlanLayer               `json:"environment"`
	Config   dockerspec.DockerOCIImage `json:"config"`
	Ops      []PlanOp                  `json:"ops"`
}

// PlanLayer is one environment layer.
type PlanLayer struct {
	Name      string   `json:"name"`
	Packages  []string `json:"packages"`
	UVSync    []string `json:"uv_selection,omitempty"`
	NoInstall []string `json:"uv_no_install,omitempty"`
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
			Variant:  img.Variant.Name,
			Image:    img.Name,
			Platform: platforms.Format(img.Platform),
			Base:     img.Base,
			Shared:   img.Shared,
			Config:   img.Config,
			Ops:      ops,
		}
		for _, part := range img.Parts {
			p.Parts = append(p.Parts, part.Name)
		}
		for _, l := range img.Layers {
			pl := PlanLayer{Name: l.Name, NoInstall: l.Sync.NoInstall}
			for _, r := range l.Requirements {
				s := r.Spec()
				if r.Index != "" {
					s += " (" + r.Index + ")"
				}
				pl.Packages = append(pl.Packages, s)
			}
			for _, e := range l.Sync.Extras {
				pl.UVSync = append(pl.UVSync, "extra "+e)
			}
			for _, g := range l.Sync.Groups {
				pl.UVSync = append(pl.UVSync, "group "+g)
			}
			p.Env = append(p.Env, pl)
		}
		out = append(out, p)
	}
	return out, nil
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
