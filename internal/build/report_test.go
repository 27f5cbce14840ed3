package build

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteTableDockerColumn(t *testing.T) {
	rep := &Report{Images: []ImageReport{
		{Variant: "backend-prod", Ref: "r/ktrdr-backend:prod", CompressedBytes: 80.6e6, UncompressedBytes: 238.1e6, Layers: 8},
		{Variant: "worker-gpu", Ref: "r/ktrdr-worker-gpu:latest", CompressedBytes: 2.31e9, UncompressedBytes: 3.84e9, Layers: 7},
	}}
	var plain, docker bytes.Buffer
	WriteTable(&plain, rep)
	if strings.Contains(plain.String(), "DOCKER SIZE") {
		t.Errorf("no engine, yet a docker column:\n%s", plain.String())
	}
	WriteTableDocker(&docker, rep, map[string]int64{"backend-prod": 238_100_000})
	lines := strings.Split(docker.String(), "\n")
	if !strings.Contains(lines[0], "UNCOMPRESSED  DOCKER SIZE  LAYERS") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(lines[1], "238.1 MB      238.1 MB     8") {
		t.Errorf("backend-prod row %q", lines[1])
	}
	if !strings.Contains(lines[2], "3.84 GB       -            7") {
		t.Errorf("worker-gpu row (not in the engine) %q", lines[2])
	}
}
