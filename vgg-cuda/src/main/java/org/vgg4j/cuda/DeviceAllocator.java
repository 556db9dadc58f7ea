package org.vgg4j.cuda;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.TreeMap;
import org.vgg4j.cuda.api.CudaOutOfMemoryException;
import org.vgg4j.cuda.api.CudaException;

/**
 * A caching device allocator: freed blocks are kept in size-keyed free lists and handed out again, so a training
 * step's hundreds of same-sized allocations do not each cost a cuMemAlloc/cuMemFree (which synchronise the device).
 *
 * <p>Sizes are rounded up to 512 bytes (small) or to 1/8 of their power of two (large), which bounds the waste to
 * 12.5 % and makes repeated shapes hit the same bin; a request takes the smallest cached block of at least its size
 * and at most twice it. When the driver runs out, every cached block is released and the allocation retried once
 * before {@link CudaOutOfMemoryException} is thrown. Is not: thread-safe beyond one backend's use (synchronised),
 * nor a sub-allocator (a block is never split).
 */
final class DeviceAllocator {
    private final Driver driver;
    /** rounded size in bytes -> cached free blocks of exactly that size */
    private final TreeMap<Long, ArrayDeque<Long>> cache = new TreeMap<>();
    private final Map<Long, Long> sizeOf = new java.util.HashMap<>();
    private long inUseBytes;
    private long cachedBytes;
    private long peakBytes;

    DeviceAllocator(Driver driver) {
        this.driver = driver;
    }

    static long roundUp(long bytes) {
        if (bytes <= 1 << 20) {
            return (bytes + 511) & ~511L;
        }
        long step = Long.highestOneBit(bytes - 1) >> 3;
        return (bytes + step - 1) / step * step;
    }

    synchronized long allocate(long bytes) {
        long size = roundUp(Math.max(bytes, 1));
        Map.Entry<Long, ArrayDeque<Long>> e = cache.ceilingEntry(size);
        if (e != null && e.getKey() <= 2 * size) {
            long p = e.getValue().pop();
            if (e.getValue().isEmpty()) {
                cache.remove(e.getKey());
            }
            cachedBytes -= e.getKey();
            inUseBytes += e.getKey();
            peakBytes = Math.max(peakBytes, inUseBytes);
            return p;
        }
        long p;
        try {
            p = driver.malloc(size);
        } catch (CudaOutOfMemoryException oom) {
            releaseCached();
            p = driver.malloc(size); // a second failure propagates
        }
        sizeOf.put(p, size);
        inUseBytes += size;
        peakBytes = Math.max(peakBytes, inUseBytes);
        return p;
    }

    synchronized void release(long devPtr) {
        Long size = sizeOf.get(devPtr);
        if (size == null) {
            throw new CudaException("release of 0x" + Long.toHexString(devPtr) + ", which this allocator did not hand out");
        }
        inUseBytes -= size;
        cachedBytes += size;
        cache.computeIfAbsent(size, k -> new ArrayDeque<>()).push(devPtr);
    }

    /** Gives every cached block back to the driver. */
    synchronized void releaseCached() {
        for (ArrayDeque<Long> q : cache.values()) {
            for (long p : q) {
                sizeOf.remove(p);
                driver.free(p);
            }
        }
        cache.clear();
        cachedBytes = 0;
    }

    synchronized long inUseBytes() {
        return inUseBytes;
    }

    synchronized long cachedBytes() {
        return cachedBytes;
    }

    synchronized long peakBytes() {
        return peakBytes;
    }
}
