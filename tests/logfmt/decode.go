// Reads logfmt records on stdin with the reference decoder (github.com/go-logfmt/logfmt, from
// Debian's golang-github-go-logfmt-logfmt-dev) and writes each as a JSON array of [key, value]
// pairs, one line per record. Exits 1, naming the position, at the first line it cannot read.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/go-logfmt/logfmt"
)

func main() {
	d := logfmt.NewDecoder(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for d.ScanRecord() {
		record := [][2]string{}
		for d.ScanKeyval() {
			record = append(record, [2]string{string(d.Key()), string(d.Value())})
		}
		if d.Err() != nil {
			break
		}
		if err := out.Encode(record); err != nil {
			fmt.Fprintln(os.Stderr, "decode:", err)
			os.Exit(1)
		}
	}
	if err := d.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "logfmt:", err)
		os.Exit(1)
	}
}
