package balancer

// random picks members at random in proportion to their weights.
type random struct{}

var (
	_ policy = (*random)(nil)
	_ drawer = (*random)(nil)
)

func newRandom(*snapshot) policy { return &random{} }

func (*random) draw(s *snapshot) int { return s.drawWeighted(s.bal.rnd()) }

func (p *random) pick(s *snapshot, info PickInfo, now int64, panicking bool) int {
	return sample(s, p, info, now, panicking)
}
