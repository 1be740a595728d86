package cpu

import "math"

// blockSmall is block for few query-head rows (m < 16; rows >= m rows of q, o and s, a multiple of 4 and
// >= roundUp(m, 3)): scores s (rows, nbPad) row-major, so that the softmax passes run along tokens.
func (t *attnTask) blockSmall(w *attnScratch, sq *attnSeq, r0, m, rows, jb, nb int) {
	hd, group := t.hd, t.group
	nbPad := roundUp(nb, 12)
	s := w.s[:rows*nbPad]
	m4 := roundUp(m, 4)
	for i := 0; i < m4; i += 4 {
		for j := 0; j < nbPad; j += 3 {
			dot4x3(s[i*nbPad+j:], nbPad, w.q[i*hd:], hd, w.k[j*hd:], hd, hd)
		}
	}
	clear(s[m4*nbPad:])

	ninf := float32(math.Inf(-1))
	first := sq.pos0 + r0 // the newest position every row of the task sees
	o := w.o[:rows*hd]
	for i := 0; i < m; i++ {
		row := s[i*nbPad : (i+1)*nbPad]
		lim, n := first+i/group, nb // row i sees the first n tokens of the block
		if sq.sel != nil {
			if int(sq.sel[jb+nb-1]) > lim {
				n = countVisible(sq.sel[jb:jb+nb], lim)
			}
		} else {
			n = max(0, min(nb, lim-jb+1))
		}
		bm := rowScaleMax(row[:n], t.a.Scale)
		if sq.hm != nil && !sq.headMaxSep { // one query row, no selection: row i is query head i of this KV head
			hm := sq.hm.headMax[w.kvh*sq.len+jb : w.kvh*sq.len+jb+n]
			for j, v := range row[:n] {
				hm[j] = max(hm[j], v)
			}
		}
		mNew := max(w.m[i], bm)
		sub := mNew
		if mNew == ninf {
			sub = 0 // nothing visible yet: the row stays at zero
		}
		al := exp32(w.m[i] - sub)
		w.m[i] = mNew
		sum := rowExpSum(row[:n], sub)
		clear(row[n:])
		w.l[i] = w.l[i]*float64(al) + sum
		if al != 1 {
			scaleF32(o[i*hd:(i+1)*hd], al)
		}
	}

	// o += P·V with P = s (rows, nbPad).
	if hd%16 == 0 {
		for i := 0; i < roundUp(m, 3); i += 3 {
			for c := 0; c < hd; c += 16 {
				gemmTile(3, o[i*hd+c:], hd, s[i*nbPad:], nbPad, 1, w.v[c:], hd, nbPad)
			}
		}
		return
	}
	for i := 0; i < m; i++ {
		oi := o[i*hd : (i+1)*hd]
		for j, p := range s[i*nbPad : i*nbPad+nb] {
			if p != 0 {
				axpyF32(oi, p, w.v[j*hd:(j+1)*hd])
			}
		}
	}
}
