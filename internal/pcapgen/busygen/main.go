// Command busygen writes a capture of issue 11's input class
// (pcapgen.Issue11: a busy subnet, 200,000 flows of 20,000 hosts in
// 10.0.0.0/8, each packet's flow drawn at random, IMIX-like sizes, 1 µs
// apart) for scripts/bench-peers.sh. The replay benchmarks write the same
// bytes for the same packet count.
//
//	go run ./internal/pcapgen/busygen -packets 2000000 -o busy.pcap
//	go run ./internal/pcapgen/busygen -packets 2000000 -late 0.1 -o late.pcap
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/natcheck/natcheck/internal/pcapgen"
)

func main() {
	c := pcapgen.Issue11()
	flag.IntVar(&c.Packets, "packets", c.Packets, "packets in the capture")
	flag.Float64Var(&c.Late, "late", 0, "fraction of the records written 1 ms late (out of time order)")
	out := flag.String("o", "", "the pcap file to write")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: busygen [-packets N] [-late F] -o FILE")
		os.Exit(2)
	}
	if err := c.WriteFile(*out); err != nil {
		fmt.Fprintln(os.Stderr, "busygen:", err)
		os.Exit(1)
	}
}
