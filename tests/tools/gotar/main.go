// gotar: tars written by Go's archive/tar (what docker, buildah, BuildKit, ko and apko use), and a tar lister
// with Go's reader, for tests/e2e/unpack_dialects.sh.
//
//	gotar write OUTDIR   write go-auto.tar (no format asked: Go picks USTAR, PAX or GNU per entry, as docker and
//	                     buildah do), go-pax.tar, go-gnu.tar (the same entries) and go-global.tar (PAX, global
//	                     records first)
//	gotar list TAR       print each entry as Go reads it: name, type, mode, uid:gid, size, link (quoted)
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type ent struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	data       string
	mtime      int64
	pax        map[string]string
}

var long = strings.Repeat("d", 90) + "/" + strings.Repeat("e", 90) + "/" + strings.Repeat("f", 120)

func entries(format tar.Format) []ent {
	e := []ent{
		{name: "dir/", typ: tar.TypeDir, mode: 0o750, uid: 1, gid: 2},
		{name: "dir/short", typ: tar.TypeReg, mode: 0o644, uid: 1000, gid: 1000, data: "short\n"},
		{name: "dir/setuid", typ: tar.TypeReg, mode: 0o4755, data: "setuid\n"},
		{name: strings.Repeat("d", 90) + "/", typ: tar.TypeDir, mode: 0o755},
		{name: strings.Repeat("d", 90) + "/" + strings.Repeat("e", 90) + "/", typ: tar.TypeDir, mode: 0o755},
		{name: long, typ: tar.TypeReg, mode: 0o600, uid: 33, gid: 33, data: "long name\n"},
		{name: "hard-to-long", typ: tar.TypeLink, link: long},
		{name: "sym-long", typ: tar.TypeSymlink, mode: 0o777, link: "/" + long},
		{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
		{name: "old-mtime", typ: tar.TypeReg, mode: 0o644, data: "1960\n", mtime: -315619200},
	}
	e = append(e,
		ent{name: "bigid", typ: tar.TypeReg, mode: 0o644, uid: 3000000, gid: 3000001, data: "big ids\n"},
		ent{name: "caf\xe9-latin1", typ: tar.TypeReg, mode: 0o644, data: "latin-1 name\n"},
		ent{name: "ünïcödé", typ: tar.TypeReg, mode: 0o644, data: "utf-8 name\n"})
	if format != tar.FormatGNU {
		e = append(e, ent{name: "xattr", typ: tar.TypeReg, mode: 0o644, data: "x\n",
			pax: map[string]string{"SCHILY.xattr.user.dialect": "go"}})
	}
	return e
}

func write(path string, format tar.Format, global bool) error {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	if global {
		if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "global",
			PAXRecords: map[string]string{"comment": "a global record", "mtime": "1234567890"}}); err != nil {
			return err
		}
	}
	for _, e := range entries(format) {
		mt := e.mtime
		if mt == 0 {
			mt = 1577836800
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: time.Unix(mt, 0), Size: int64(len(e.data)), Format: format, PAXRecords: e.pax}
		if err := w.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func list(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("%q %c %o %d:%d %d %q\n", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname)
	}
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "write":
		d := os.Args[2]
		for _, c := range []struct {
			name   string
			format tar.Format
			global bool
		}{{"go-auto", tar.FormatUnknown, false}, {"go-pax", tar.FormatPAX, false}, {"go-gnu", tar.FormatGNU, false},
			{"go-global", tar.FormatPAX, true}} {
			if err = write(filepath.Join(d, c.name+".tar"), c.format, c.global); err != nil {
				err = fmt.Errorf("%s: %v", c.name, err)
				break
			}
		}
	case len(os.Args) == 3 && os.Args[1] == "list":
		err = list(os.Args[2])
	default:
		err = fmt.Errorf("usage: gotar write OUTDIR | gotar list TAR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotar:", err)
		os.Exit(1)
	}
}
