package logs

import (
	"fmt"
	"os"
)

// The writers' open files are bounded (Options.MaxOpenFiles): a daemon with
// tens of thousands of running services, a writer each, would otherwise run
// out of file descriptors, and then fail at everything else. A
// writer whose file was closed opens it again at its next write; the file
// is append-only and its size is kept in memory, so nothing else changes.

// setFile makes f the writer's current file, closing the previous one;
// l.mu is held.
func (l *svcLog) setFile(f *os.File) {
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	l.s.touch(l)
}

// closeFile closes the writer's current file; l.mu is held.
func (l *svcLog) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.s.forget(l)
	return err
}

// file returns the writer's current file, opened again if it was closed;
// l.mu is held.
func (l *svcLog) file() (*os.File, error) {
	if l.f != nil {
		l.s.touch(l)
		return l.f, nil
	}
	// Not created: the file exists as long as the log does (a file removed
	// behind the store's back is an error, not a log without its header).
	f, err := os.OpenFile(l.path(l.seq), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logs: reopen: %w", err)
	}
	l.setFile(f)
	return f, nil
}

// touch marks l's file as the most recently used; l.mu is held and l.f
// open. The budget is restored by trim, once l.mu is released.
func (s *Store) touch(l *svcLog) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if l.elem != nil {
		s.openFiles.MoveToFront(l.elem)
	} else {
		l.elem = s.openFiles.PushFront(l)
	}
}

// trim closes the least recently used files beyond the budget; no svcLog.mu
// is held. The budget is exceeded at most by the writes under way, each
// trimming after itself.
func (s *Store) trim() {
	for {
		s.fmu.Lock()
		if s.openFiles.Len() <= s.opts.MaxOpenFiles {
			s.fmu.Unlock()
			return
		}
		v := s.openFiles.Back().Value.(*svcLog)
		s.fmu.Unlock()
		// Locked in order, mu then fmu; v may have been used meanwhile.
		v.mu.Lock()
		s.fmu.Lock()
		evict := v.elem != nil && v.elem == s.openFiles.Back() && s.openFiles.Len() > s.opts.MaxOpenFiles
		s.fmu.Unlock()
		if evict {
			if err := v.closeFile(); err != nil {
				s.log.Warn("cannot close a log file", "execution", v.key.exec, "service", v.key.service, "error", err)
			}
		}
		v.mu.Unlock()
	}
}

// forget takes l off the open files; l.mu is held.
func (s *Store) forget(l *svcLog) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if l.elem != nil {
		s.openFiles.Remove(l.elem)
		l.elem = nil
	}
}
