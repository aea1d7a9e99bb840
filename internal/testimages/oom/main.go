// Command oom is a test image: it allocates and touches memory, 4 MiB at a
// time, until the kernel kills it.
package main

import (
	"fmt"
	"time"
)

func main() {
	var hog [][]byte
	for i := 1; ; i++ {
		b := make([]byte, 4<<20)
		for j := range b {
			b[j] = byte(j)
		}
		hog = append(hog, b)
		if i%16 == 0 {
			fmt.Printf("%d MiB\n", 4*len(hog))
		}
		time.Sleep(time.Millisecond)
	}
}
