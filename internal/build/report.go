package build

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
)

// WriteReportFile writes the report as JSON with exactly the fields of
// ImageReport: {"images":[{"variant","ref","digest","index" (several
// platforms),"platform","compressed_bytes","uncompressed_bytes","layers",
// "largest_layer_bytes","probes":[...],"solve_seconds","probe_seconds"}]},
// one entry per image and platform.
func WriteReportFile(path string, rep *Report) error {
	dt, err := json.MarshalIndent(struct {
		Images []ImageReport `json:"images"`
	}{rep.Images}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(dt, '\n'), 0o644)
}

// WriteTable prints the report as the CLI shows it: one row per image,
// each probe's detail, the duplication ratios and the vertex summary.
func WriteTable(w io.Writer, rep *Report) { WriteTableDocker(w, rep, nil) }

// WriteTableDocker is WriteTable with a DOCKER SIZE column after the
// registry's sizes: dockerSizes maps a variant to the SIZE docker images
// shows for its image, where an engine has it ("-" for the others). With
// no docker size at all the column is left out.
func WriteTableDocker(w io.Writer, rep *Report, dockerSizes map[string]int64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := ""
	if len(dockerSizes) > 0 {
		head = "DOCKER SIZE\t"
	}
	fmt.Fprintln(tw, "VARIANT\tPLATFORM\tIMAGE\tDIGEST\tCOMPRESSED\tUNCOMPRESSED\t"+head+"LAYERS\tLARGEST LAYER\tPROBES")
	// An image of several platforms: its rows and probe lines name the
	// platform, and its index digest follows the table.
	var indexes []string
	rows := map[string]int{}
	for _, r := range rep.Images {
		rows[r.Variant]++
		if r.Index != "" && rows[r.Variant] == 1 {
			indexes = append(indexes, fmt.Sprintf("  %s: index %s (%s)", r.Variant, r.Index, r.Ref))
		}
	}
	for _, r := range rep.Images {
		ok := 0
		for _, p := range r.Probes {
			if p.OK {
				ok++
			}
		}
		probes := fmt.Sprintf("%d/%d ok", ok, len(r.Probes))
		if len(r.Probes) == 0 {
			probes = "not run"
		}
		dockerCell := ""
		if len(dockerSizes) > 0 {
			dockerCell = size(dockerSizes[r.Variant]) + "\t"
		}
		digest := r.Digest
		if len(digest) > 19 {
			digest = digest[:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s%d\t%s\t%s\n", r.Variant, r.Platform, r.Ref, digest, size(r.CompressedBytes), size(r.UncompressedBytes), dockerCell, r.Layers, size(r.LargestLayerBytes), probes)
	}
	tw.Flush()
	for _, l := range indexes {
		fmt.Fprintln(w, l)
	}
	for _, r := range rep.Images {
		name := r.Variant
		if rows[r.Variant] > 1 {
			name += " " + r.Platform
		}
		for _, p := range r.Probes {
			mark := "ok  "
			if !p.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %s %s: %s\n", mark, name, p.Name, p.Detail)
		}
	}
	var measured []string
	for n := range rep.Measures {
		measured = append(measured, n)
	}
	sort.Strings(measured)
	for _, n := range measured {
		if m := rep.Measures[n]; m.UniqueBytes > 0 {
			fmt.Fprintf(w, "  %s: layer content %s for %s of final files (%.3fx)\n", n, size(m.ContentBytes), size(m.UniqueBytes), float64(m.ContentBytes)/float64(m.UniqueBytes))
		}
	}
	v := rep.Vertices
	if v.Distinct > 0 {
		fmt.Fprintf(w, "vertices: %d over %d solves, %d distinct, %d shared by several images (solved once), %d from cache\n", v.Total, len(v.PerVariant), v.Distinct, v.Shared, v.Cached)
	}
}

// size formats bytes in decimal units, as docker images does.
func size(n int64) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f kB", float64(n)/1e3)
}
