package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// ParseDpkgStatus reads dpkg's status database (/var/lib/dpkg/status) and
// returns the installed packages: the paragraphs whose Status is
// "install ok installed". The Source field may carry the source version in
// parentheses ("gcc-14 (14.2.0-19)"); only the name is kept.
func ParseDpkgStatus(data []byte) ([]Debian, error) {
	var out []Debian
	var cur map[string]string
	var last string
	flush := func() {
		if cur != nil && cur["Status"] == "install ok installed" && cur["Package"] != "" {
			src, _, _ := strings.Cut(cur["Source"], " ")
			out = append(out, Debian{Name: cur["Package"], Version: cur["Version"], Arch: cur["Architecture"], Source: src})
		}
		cur, last = nil, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if strings.TrimSpace(t) == "" {
			flush()
			continue
		}
		if t[0] == ' ' || t[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("dpkg status line %d: a continuation line outside a field", line)
			}
			continue // multi-line values (Description, Conffiles) are not needed
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("dpkg status line %d: %q is not a field", line, t)
		}
		if cur == nil {
			cur = map[string]string{}
		}
		last = k
		cur[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	flush()
	return out, nil
}

// ParseOSRelease returns ID and VERSION_ID of an os-release file.
func ParseOSRelease(data []byte) (id, versionID string) {
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			versionID = v
		}
	}
	return id, versionID
}
