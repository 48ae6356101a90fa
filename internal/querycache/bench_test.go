package querycache

import (
	"testing"
	"time"
)

func BenchmarkGetHit(b *testing.B) {
	c := newTestCache(b, Config{}, nil)
	d := c.DB("app")
	var k Key
	k.String("select * from products where id = $1")
	k.Bytes([]byte{0, 0, 0, 42})
	key, hash := append([]byte(nil), k.Raw()...), k.Hash()
	if !put(d, hash, string(key), string(make([]byte, 512)), []string{"products", "shop.orders"}, time.Hour) {
		b.Fatal("not stored")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := d.Get(hash, key); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := newTestCache(b, Config{}, nil)
	d := c.DB("app")
	key := []byte("select * from products where id = 42")
	put(d, 1, string(key), string(make([]byte, 512)), []string{"products"}, time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := d.Get(1, key); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

func BenchmarkKeyBuildHash(b *testing.B) {
	var k Key
	sql := "select id, name, price from shop.products where category = $1 and price < $2 order by price limit 50"
	bind := make([]byte, 48)
	var sink uint64
	b.ReportAllocs()
	for b.Loop() {
		k.Reset()
		k.Byte('X')
		k.String(sql)
		k.Bytes(bind)
		k.String("app")
		k.String("alice")
		k.Uint64(0x1234)
		sink += k.Hash()
	}
	_ = sink
}

func BenchmarkPut(b *testing.B) {
	c := newTestCache(b, Config{}, nil)
	d := c.DB("app")
	var k Key
	var tk Ticket
	body := make([]byte, 512)
	tables := []string{"products", "shop.orders"}
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		k.Reset()
		k.String("select * from products where id = $1")
		k.Uint64(i % 16384)
		d.Begin(&tk, tables)
		d.Put(&tk, k.Hash(), k.Raw(), body, time.Hour)
	}
}
