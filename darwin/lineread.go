package darwin

import (
	"bufio"
	"errors"
	"fmt"
)

// errLongLine marks a line longer than the reader's bound: it is skipped whole.
var errLongLine = fmt.Errorf("eslogger line longer than %d MiB", maxLine>>20)

// readLine appends the next line of br to buf and returns it without its newline; at the end
// of the input it returns what is left and io.EOF. A line longer than max is read to its end
// but only its first max bytes are kept, with errLongLine, so one oversized line costs that
// line alone.
func readLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		n := len(chunk)
		if err == nil {
			n-- // the newline
		}
		switch {
		case long:
		case len(buf)+n > max:
			long = true
			buf = append(buf, chunk[:max-len(buf)]...)
		default:
			buf = append(buf, chunk[:n]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if long {
			return buf, errLongLine
		}
		return buf, err
	}
}
