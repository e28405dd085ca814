import { All, Controller, Get, Inject, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ServedModel } from '../core/served-model';
import { SERVED_MODEL } from '../core/tokens';
import { ModelNotFoundError } from '../errors/gateway-errors';
import { sendMethodNotAllowed } from './method-not-allowed';
import { openAiErrorBody } from '../errors/openai-error';

/** OpenAI's model object for the one model this gateway serves. */
interface ModelCard {
  readonly id: string;
  readonly object: 'model';
  readonly created: number;
  readonly owned_by: string;
}

/** GET /v1/models (a list of one) and GET /v1/models/{id} (404 model_not_found for any other id). */
@Controller('v1')
export class ModelsController {
  private readonly card: ModelCard;

  constructor(@Inject(SERVED_MODEL) model: ServedModel) {
    this.card = { id: model.name, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: 'kcache-serve' };
  }

  @Get('models')
  list(): { object: 'list'; data: ModelCard[] } {
    return { object: 'list', data: [this.card] };
  }

  @Get('models/:id')
  retrieve(@Param('id') id: string, @Res() res: Response): void {
    if (id === this.card.id) {
      res.json(this.card);
      return;
    }
    res.status(404).json(openAiErrorBody(404, new ModelNotFoundError(id, this.card.id).message, 'model', 'model_not_found'));
  }

  @All(['models', 'models/:id'])
  wrongMethod(@Res() res: Response): void {
    sendMethodNotAllowed(res, 'GET');
  }
}
