package projections

import (
	"fmt"

	"github.com/dop251/goja"
)

// hardenSource bounds the built-ins that make a large string, array or
// buffer in one native call from small arguments ("x".repeat(1e12) would
// ask Go for a terabyte): the watchdog can interrupt JavaScript only
// between instructions, never inside such a call. Each wrapped built-in
// refuses, with a RangeError, a result of more than limit characters,
// elements or bytes. The originals stay in the closure, out of the
// script's reach.
const hardenSource = `(function (limit) {
	'use strict';
	function check(n, what) {
		if (n > limit) {
			throw new RangeError(what + ' would make ' + n + ' characters, elements or bytes; the limit is ' + limit);
		}
	}
	function count(n) {
		n = Math.floor(Number(n));
		return n > 0 ? n : 0;
	}
	function wrap(o, name, pre) {
		var f = o[name];
		Object.defineProperty(o, name, {
			value: function () {
				pre.apply(this, arguments);
				return f.apply(this, arguments);
			},
			writable: true, configurable: true, enumerable: false
		});
	}
	wrap(String.prototype, 'repeat', function (n) {
		check(String(this).length * count(n), 'String.prototype.repeat');
	});
	wrap(String.prototype, 'padStart', function (n) { check(count(n), 'String.prototype.padStart'); });
	wrap(String.prototype, 'padEnd', function (n) { check(count(n), 'String.prototype.padEnd'); });
	wrap(Array.prototype, 'fill', function (v, start, end) {
		var len = count(this.length);
		var s = start === undefined ? 0 : Math.floor(Number(start)) || 0;
		var e = end === undefined ? len : Math.floor(Number(end)) || 0;
		if (s < 0) s = Math.max(len + s, 0);
		if (e < 0) e = Math.max(len + e, 0);
		check(Math.min(e, len) - Math.min(s, len), 'Array.prototype.fill');
	});
	wrap(Array.prototype, 'join', function (sep) {
		var n = count(this.length);
		var s = sep === undefined ? 1 : String(sep).length;
		check(n * Math.max(s, 1), 'Array.prototype.join');
	});
	var g = (function () { return this; })() || globalThis;
	function bound(name, bytes) {
		var C = g[name];
		if (typeof C !== 'function') return;
		g[name] = new Proxy(C, {
			construct: function (target, args, newTarget) {
				var a = args[0];
				if (typeof a === 'number') {
					check(count(a) * bytes, name);
				} else if (a !== null && typeof a === 'object' && typeof a.length === 'number') {
					check(count(a.length) * bytes, name);
				}
				return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
			}
		});
	}
	bound('ArrayBuffer', 1);
	bound('SharedArrayBuffer', 1);
	[['Int8Array', 1], ['Uint8Array', 1], ['Uint8ClampedArray', 1], ['Int16Array', 2], ['Uint16Array', 2],
	 ['Int32Array', 4], ['Uint32Array', 4], ['Float32Array', 4], ['Float64Array', 8],
	 ['BigInt64Array', 8], ['BigUint64Array', 8]].forEach(function (t) { bound(t[0], t[1]); });
})`

// harden installs the bounded built-ins in rt.
func harden(rt *goja.Runtime, limit int) error {
	v, err := rt.RunString(hardenSource)
	if err != nil {
		return fmt.Errorf("bound the built-ins: %w", err)
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return fmt.Errorf("bound the built-ins: not a function")
	}
	if _, err := fn(goja.Undefined(), rt.ToValue(limit)); err != nil {
		return fmt.Errorf("bound the built-ins: %w", err)
	}
	return nil
}
