package mount

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// entry is one line of /proc/PID/mountinfo.
type entry struct {
	ID     int
	Parent int
	Dev    uint64 // st_dev of the file system (unix.Mkdev(major, minor))
	Root   string // the directory of the file system mounted here (bind mounts)
	Target string
	FSType string
	Source string
}

func readMountinfo(path string) ([]entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	es, err := parseMountinfo(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return es, nil
}

// parseMountinfo reads the format of proc(5): "ID PARENT MAJ:MIN ROOT TARGET
// OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS", paths octal-escaped.
func parseMountinfo(data string) ([]entry, error) {
	var es []entry
	for n, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("line %d: cannot parse %q", n+1, line)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		maj, min, ok := strings.Cut(f[2], ":")
		ma, err3 := strconv.ParseUint(maj, 10, 32)
		mi, err4 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !ok {
			return nil, fmt.Errorf("line %d: cannot parse %q", n+1, line)
		}
		es = append(es, entry{
			ID:     id,
			Parent: parent,
			Dev:    unix.Mkdev(uint32(ma), uint32(mi)),
			Root:   unescape(f[3]),
			Target: unescape(f[4]),
			FSType: unescape(f[sep+1]),
			Source: unescape(f[sep+2]),
		})
	}
	return es, nil
}

// unescape undoes the kernel's octal escapes (\040 for a space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func devString(dev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
}
