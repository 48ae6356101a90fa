package pgproxy

import "go.uber.org/zap"

func zapUser(u string) zap.Field { return zap.String("user", u) }
func zapAddr(a string) zap.Field { return zap.String("addr", a) }
