"""Model evaluation route: POST /v2/model-evaluations (a dry run of scheduling)."""

from fastapi import APIRouter, Request

from gpustack.schemas.model_evaluations import ModelEvaluationRequest, ModelEvaluationResponse
from gpustack.server.auth import CurrentUser, SessionDep
from gpustack.server.services import model_evaluations as service

router = APIRouter(prefix="/model-evaluations", tags=["model-evaluations"])


@router.post("", response_model=ModelEvaluationResponse)
async def evaluate(
    data: ModelEvaluationRequest, request: Request, session: SessionDep, _u: CurrentUser
) -> ModelEvaluationResponse:
    return await service.evaluate_models(session=session, request=data, secret_key=request.app.state.secret_key)
