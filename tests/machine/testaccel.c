/* SPDX-License-Identifier: MIT */
/* An accelerator for kernel tests: runs test-cpu records (testcpu.h) through the bus until stopped. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <keel/module.h>

#include "testcpu.h"

typedef struct TestAccel {
    KeelCpuHandle *cpus;
    unsigned n_cpus;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int stop;
    unsigned kicks;
} TestAccel;

static void *test_accel_create(const KeelCpuHandle *cpus, unsigned n_cpus, KeelError *err)
{
    for (unsigned i = 0; i < n_cpus; ++i)
        if (strcmp(keel_services->object_type(cpus[i].obj), "test-cpu") != 0) {
            keel_services->error_set(err, "%s is a %s; test-accel runs only test-cpu",
                                     keel_services->object_path(cpus[i].obj),
                                     keel_services->object_type(cpus[i].obj));
            return NULL;
        }
    TestAccel *a = calloc(1, sizeof *a);
    a->cpus = malloc(n_cpus * sizeof *cpus);
    memcpy(a->cpus, cpus, n_cpus * sizeof *cpus);
    a->n_cpus = n_cpus;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cv, NULL);
    return a;
}

/* One record: 1 ran, 0 halted (nothing readable at pc), 2 spinning. */
static int step(TestCpu *s)
{
    uint64_t r[3];
    for (unsigned i = 0; i < 3; ++i)
        if (keel_services->cpu_mem_read(s->obj, s->pc + 8 * i, 8, &r[i]) != KEEL_MEM_OK) return 0;
    uint64_t v;
    switch (r[0]) {
    case TEST_OP_STORE32:
        keel_services->cpu_mem_write(s->obj, r[1], 4, r[2]);
        break;
    case TEST_OP_STORE64:
        keel_services->cpu_mem_write(s->obj, r[1], 8, r[2]);
        break;
    case TEST_OP_ADD32:
        if (keel_services->cpu_mem_read(s->obj, r[1], 4, &v) != KEEL_MEM_OK) return 0;
        keel_services->cpu_mem_write(s->obj, r[1], 4, v + r[2]);
        break;
    case TEST_OP_SKIP_IF_ZERO:
        if (keel_services->cpu_mem_read(s->obj, r[1], 4, &v) != KEEL_MEM_OK) return 0;
        if (v == 0) s->pc += TEST_RECORD_SIZE;
        break;
    case TEST_OP_SPIN:
        return 2;
    default:
        return 0;
    }
    s->pc += TEST_RECORD_SIZE;
    return 1;
}

static int test_accel_run(void *opaque)
{
    TestAccel *a = opaque;
    for (;;) {
        int busy = 0;
        for (unsigned i = 0; i < a->n_cpus; ++i)
            busy |= step(a->cpus[i].env);
        pthread_mutex_lock(&a->lock);
        if (a->stop) {
            pthread_mutex_unlock(&a->lock);
            return 0;
        }
        if (busy != 1) {
            /* Every CPU halted or spinning: wait a little, or until stop()/kick(). */
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 1000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&a->cv, &a->lock, &t);
        }
        pthread_mutex_unlock(&a->lock);
    }
}

static void test_accel_stop(void *opaque)
{
    TestAccel *a = opaque;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

static void test_accel_kick(void *opaque, unsigned cpu_index)
{
    (void)cpu_index;
    TestAccel *a = opaque;
    pthread_mutex_lock(&a->lock);
    a->kicks++;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

static void test_accel_destroy(void *opaque)
{
    TestAccel *a = opaque;
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cv);
    free(a->cpus);
    free(a);
}

static const KeelAccelOps test_accel_ops = {
    .size = sizeof(KeelAccelOps),
    .create = test_accel_create,
    .run = test_accel_run,
    .stop = test_accel_stop,
    .kick = test_accel_kick,
    .destroy = test_accel_destroy,
};

static const KeelAccelTypeInfo test_accel_type = {
    .size = sizeof(KeelAccelTypeInfo),
    .name = "test-accel",
    .description = "runs test-cpu records, for kernel tests",
    .ops = &test_accel_ops,
};

static int test_accel_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_accel(reg, &test_accel_type, err);
}

KEEL_MODULE("testaccel", KEEL_MODULE_ACCEL, "1.0.0", "Accelerator for kernel tests", "MIT",
            test_accel_module_init)
