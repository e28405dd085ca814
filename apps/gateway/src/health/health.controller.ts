import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ReadinessService } from './readiness.service';

@Controller()
export class HealthController {
  constructor(@Inject(ReadinessService) private readonly readiness: ReadinessService) {}

  /** Liveness: the process serves HTTP. */
  @Get('healthz')
  healthz(): { status: string } {
    return { status: 'ok' };
  }

  /** 200 when Redis answers and a worker is alive; 503 otherwise. */
  @Get('readyz')
  async readyz(@Res() res: Response): Promise<void> {
    const readiness = await this.readiness.check();
    res.status(readiness.isReady ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json(readiness);
  }
}
